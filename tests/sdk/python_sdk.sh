#!/usr/bin/env bash
# A real client test: the official Segment Python SDK (segment-analytics-python), pointed at
# a running `prossimo serve`, sends identify, track, page, group and alias calls; the check
# then reads the profile back through the customer 360 API.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/sdk/serve.sh "segment-analytics-python==2.4.0"
"$VENV/bin/python" tests/sdk/python_sdk_check.py --host "$HOST" --write-key "$WRITE_KEY" --admin-token "$ADMIN_TOKEN"
