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

PLAYWRIGHT_CORE_VERSION=1.65.2   # needs Node >= 20; drives the system Chromium, downloads nothing
CHROMIUM=/usr/bin/chromium
E2E_DIR=$ROOT/target/console-e2e
SCREENSHOT_DIR=$ROOT/target/console-screenshots

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- Chromium (Debian's package; Playwright's own browser downloads cannot work here) ---
if [ ! -x "$CHROMIUM" ]; then
    echo "console e2e: installing Debian's chromium"
    started=$(date +%s)
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; then
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
    fi
    echo "console e2e: chromium installed in $(( $(date +%s) - started )) s"
fi
"$CHROMIUM" --version 2>/dev/null

# --- playwright-core, pinned, in target/console-e2e (never `npx playwright install`) ---
installed=$(node -e 'try { console.log(require(process.argv[1]).version) } catch { }' \
    "$E2E_DIR/node_modules/playwright-core/package.json")
if [ "$installed" != "$PLAYWRIGHT_CORE_VERSION" ]; then
    echo "console e2e: installing playwright-core@$PLAYWRIGHT_CORE_VERSION (had: ${installed:-none})"
    mkdir -p "$E2E_DIR"
    cat >"$E2E_DIR/package.json" <<EOF
{
  "name": "prossimo-console-e2e",
  "private": true,
  "description": "Written by tests/console/run.sh: the browser driver for the console end-to-end test.",
  "dependencies": { "playwright-core": "$PLAYWRIGHT_CORE_VERSION" }
}
EOF
    (cd "$E2E_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error)
fi

# --- the server: debug build, demo retailer, a free port ---
cargo build --locked -q -p prossimo
BIN=$ROOT/target/debug/prossimo
DATA=$(mktemp -d)
PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })')
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

up=
for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "$HOST/health" 2>/dev/null; then up=1; break; fi
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.2
done
[ -n "$up" ] || { echo "console e2e: the server did not answer $HOST/health"; exit 1; }

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
