#!/usr/bin/env bash
# A property-based fuzzer (schemathesis, from PyPI, in the tests' venv) drives every
# operation of the OpenAPI document a live `prossimo serve` generates, with valid and
# invalid requests, and fails on any 5xx and on any status the document does not list.
#   bash tests/api/fuzz.sh [max examples per operation, default 30]
set -euo pipefail
cd "$(dirname "$0")/../.."
EXAMPLES=${1:-30}

source tests/sdk/serve.sh "schemathesis==4.32.5"
export WRITE_KEY ADMIN_TOKEN
started=$(date +%s)
# `st run` has no overall time limit of its own.
timeout 900 "$VENV/bin/schemathesis" --config-file tests/api/schemathesis.toml run "$HOST/openapi.json" \
    --checks not_a_server_error,status_code_conformance \
    --max-examples "$EXAMPLES" \
    --seed 20261207 \
    --no-color \
    || { echo "api fuzz: failed; the server's log:"; tail -50 "$DATA/server.log"; exit 1; }
echo "api fuzz: passed in $(( $(date +%s) - started )) s"
