#!/usr/bin/env bash
# Signed webhooks checked by an independent implementation: the Standard Webhooks
# reference library for Python (`standardwebhooks`) verifies every delivery a running
# `prossimo serve` makes when a customer enters an audience.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/sdk/serve.sh "standardwebhooks==1.1.0"
"$VENV/bin/python" tests/sdk/webhooks_check.py --host "$HOST" --write-key "$WRITE_KEY" --admin-token "$ADMIN_TOKEN"
