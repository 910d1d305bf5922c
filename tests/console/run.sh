#!/usr/bin/env bash
# The web console in a real browser: Debian's Chromium, driven by playwright-core, against a
# debug `prossimo serve` on a fresh store filled by `prossimo demo`. Signs in, searches, opens
# a customer, filters the timeline, switches language, writes an audience in the editor
# (live check, no-JavaScript check, preview, save, members), looks at every analytics chart,
# watches live events arrive from the tracking API, adds a viewer and an admin token in
# settings and signs in as that viewer, checks narrow (390 px) screens and the Italian
# charts, checks CSRF and signs out (tests/console/e2e.mjs). Screenshots go to
# target/console-screenshots.
#   bash tests/console/run.sh
# KEEP_DATA=1 keeps the data directory and prints where it is.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
# The embedded store in a fresh directory, whatever the caller's environment says.
unset PROSSIMO_DATABASE PROSSIMO_CONFIG PROSSIMO_DATA_DIR

E2E_DIR=$ROOT/target/console-e2e
SCREENSHOT_DIR=$ROOT/target/console-screenshots

source tests/browser/setup.sh
ensure_chromium
ensure_npm_packages "$E2E_DIR" prossimo-console-e2e "playwright-core@$PLAYWRIGHT_CORE_VERSION"

# --- the server: debug build, demo retailer, a free port ---
cargo build --locked -q -p prossimo
BIN=$ROOT/target/debug/prossimo
DATA=$(mktemp -d)
PORT=$(free_port)
HOST="http://127.0.0.1:$PORT"
WRITE_KEY=wk_console_e2e_write_key
ADMIN_TOKEN=pat_console_e2e_admin_token
ADMIN_EMAIL=admin@localhost
ADMIN_PASSWORD=console-e2e-Passw0rd
SERVER=

cleanup() {
    status=$?
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$DATA/server.log" ]; then
        mkdir -p "$SCREENSHOT_DIR"
        cp "$DATA/server.log" "$SCREENSHOT_DIR/server.log"
        echo "--- last lines of the server log (whole: ${SCREENSHOT_DIR#"$ROOT"/}/server.log) ---"
        tail -n 40 "$DATA/server.log"
    fi
    if [ -n "${KEEP_DATA:-}" ]; then
        echo "console e2e: data kept in $DATA"
    else
        rm -rf "$DATA"
    fi
}
trap cleanup EXIT

started=$(date +%s)
"$BIN" --data-dir "$DATA" demo >"$DATA/demo.log" 2>&1 || { cat "$DATA/demo.log"; exit 1; }
echo "console e2e: demo retailer loaded in $(( $(date +%s) - started )) s"

# The analyses behind /analytics: everything, then a CLV calibration run (fitted on orders up
# to 180 days ago, compared with what happened since) for the holdout chart.
started=$(date +%s)
"$BIN" --data-dir "$DATA" analyze >"$DATA/analyze.log" 2>&1 || { cat "$DATA/analyze.log"; exit 1; }
"$BIN" --data-dir "$DATA" analyze clv --calibration-end "$(date -u -d '-180 days' +%F)" \
    >>"$DATA/analyze.log" 2>&1 || { cat "$DATA/analyze.log"; exit 1; }
echo "console e2e: analyses (all, and the CLV holdout) done in $(( $(date +%s) - started )) s"

PROSSIMO_WRITE_KEY=$WRITE_KEY PROSSIMO_ADMIN_TOKEN=$ADMIN_TOKEN PROSSIMO_ADMIN_PASSWORD=$ADMIN_PASSWORD \
    PROSSIMO_LOG=${PROSSIMO_LOG:-warn} \
    "$BIN" --data-dir "$DATA" serve --listen "127.0.0.1:$PORT" >"$DATA/server.log" 2>&1 &
SERVER=$!

wait_for_health "$HOST" "$SERVER" "console e2e"

# --- the browser test ---
mkdir -p "$SCREENSHOT_DIR"
rm -f "$SCREENSHOT_DIR/server.log"
CONSOLE_URL=$HOST \
CONSOLE_EMAIL=$ADMIN_EMAIL \
CONSOLE_PASSWORD=$ADMIN_PASSWORD \
ADMIN_TOKEN=$ADMIN_TOKEN \
WRITE_KEY=$WRITE_KEY \
SCREENSHOT_DIR=$SCREENSHOT_DIR \
PLAYWRIGHT_DIR=$E2E_DIR \
NODE_PATH=$E2E_DIR/node_modules \
CHROMIUM=$CHROMIUM \
    node tests/console/e2e.mjs
