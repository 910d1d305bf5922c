#!/usr/bin/env bash
# Signed webhooks checked by an independent implementation: the Standard Webhooks
# reference library for Python (`standardwebhooks`) verifies every delivery a running
# `prossimo serve` makes when a customer enters an audience.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/sdk-venv
PY=${PY:-python3}
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "standardwebhooks==1.1.0"

cargo build --locked -q -p prossimo
DATA=$(mktemp -d)
PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WRITE_KEY=wk_webhooks_test_key
ADMIN_TOKEN=pat_webhooks_test_token
PROSSIMO_WRITE_KEY=$WRITE_KEY PROSSIMO_ADMIN_TOKEN=$ADMIN_TOKEN PROSSIMO_LOG=warn \
    target/debug/prossimo --data-dir "$DATA" serve --listen "127.0.0.1:$PORT" >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT

for _ in $(seq 1 100); do
    "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/health')" 2>/dev/null && break
    sleep 0.2
done

"$VENV/bin/python" tests/sdk/webhooks_check.py --host "http://127.0.0.1:$PORT" --write-key "$WRITE_KEY" --admin-token "$ADMIN_TOKEN"
