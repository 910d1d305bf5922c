# Sourced by the client tests: a venv in target/sdk-venv with the given packages, and a
# debug `prossimo serve` on a fresh embedded store and a free port, stopped on exit.
# After sourcing: $VENV, $HOST, $WRITE_KEY, $ADMIN_TOKEN.
#   source tests/sdk/serve.sh "package==version" ...

VENV=target/sdk-venv
PY=${PY:-python3}
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "$@"

cargo build --locked -q -p prossimo
DATA=$(mktemp -d)
PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HOST="http://127.0.0.1:$PORT"
WRITE_KEY=wk_sdk_test_write_key
ADMIN_TOKEN=pat_sdk_test_admin_token
# The tests' webhook receivers listen on this machine, which webhooks may not reach unless
# allowed.
printf '[destinations]\nallowed_private_networks = ["127.0.0.1"]\n' >"$DATA/prossimo.toml"
# A test may add settings of its own (an [email] section).
printf '%s\n' "${EXTRA_CONFIG:-}" >>"$DATA/prossimo.toml"
PROSSIMO_WRITE_KEY=$WRITE_KEY PROSSIMO_ADMIN_TOKEN=$ADMIN_TOKEN PROSSIMO_LOG=${PROSSIMO_LOG:-warn} \
    target/debug/prossimo --config "$DATA/prossimo.toml" --data-dir "$DATA" serve --listen "127.0.0.1:$PORT" >"$DATA/server.log" 2>&1 &
SERVER=$!
[ -n "${KEEP_DATA:-}" ] || trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT

for _ in $(seq 1 100); do
    "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('$HOST/health')" 2>/dev/null && break
    sleep 0.2
done
