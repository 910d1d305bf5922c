#!/usr/bin/env bash
# The official Segment browser SDK, @segment/analytics-next from npm, unchanged, in Debian's
# Chromium (driven by playwright-core) on a page of another origin than the server: it
# loads its settings from `prossimo serve` (cdnURL), sends identify/track/page to the short
# paths with preflights, then batches to /v1/b; a source limited to other pages cannot be
# used from this one (tests/sdk/browser_sdk.mjs).
#   bash tests/sdk/browser_sdk.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
unset PROSSIMO_DATABASE PROSSIMO_CONFIG PROSSIMO_DATA_DIR

ANALYTICS_NEXT_VERSION=1.84.3
ESBUILD_VERSION=0.28.2
SDK_DIR=$ROOT/target/browser-sdk

source tests/browser/setup.sh
ensure_chromium
ensure_npm_packages "$SDK_DIR" prossimo-browser-sdk-test \
    "playwright-core@$PLAYWRIGHT_CORE_VERSION" \
    "@segment/analytics-next@$ANALYTICS_NEXT_VERSION" \
    "esbuild@$ESBUILD_VERSION"

# The SDK as a shop bundles it: its npm package, in one file.
mkdir -p "$SDK_DIR/page"
printf "import { AnalyticsBrowser } from '@segment/analytics-next'\nwindow.AnalyticsBrowser = AnalyticsBrowser\n" \
    >"$SDK_DIR/entry.js"
"$SDK_DIR/node_modules/.bin/esbuild" "$SDK_DIR/entry.js" --bundle --format=iife \
    --platform=browser --log-level=warning --outfile="$SDK_DIR/page/analytics.js"

cargo build --locked -q -p prossimo
BIN=$ROOT/target/debug/prossimo
DATA=$(mktemp -d)
PORT=$(free_port)
HOST="http://127.0.0.1:$PORT"
WRITE_KEY=wk_browser_sdk_write_key
ADMIN_TOKEN=pat_browser_sdk_admin_token
SHOP_ONLY_KEY=wk_browser_sdk_shop_only
SERVER=
cleanup() {
    status=$?
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$DATA/server.log" ]; then
        echo "--- last lines of the server log ---"
        tail -n 30 "$DATA/server.log"
    fi
    rm -rf "$DATA"
}
trap cleanup EXIT

# A second source whose key only pages of another shop may use.
"$BIN" --data-dir "$DATA" keys create-source shop-only --write-key "$SHOP_ONLY_KEY" \
    --allowed-origin https://elsewhere.example >/dev/null

PROSSIMO_WRITE_KEY=$WRITE_KEY PROSSIMO_ADMIN_TOKEN=$ADMIN_TOKEN PROSSIMO_LOG=${PROSSIMO_LOG:-warn} \
    PROSSIMO_ADMIN_PASSWORD=browser-sdk-Passw0rd \
    "$BIN" --data-dir "$DATA" serve --listen "127.0.0.1:$PORT" >"$DATA/server.log" 2>&1 &
SERVER=$!
wait_for_health "$HOST" "$SERVER" "browser sdk"

PROSSIMO_URL=$HOST WRITE_KEY=$WRITE_KEY ADMIN_TOKEN=$ADMIN_TOKEN SHOP_ONLY_KEY=$SHOP_ONLY_KEY \
    PAGE_DIR=$SDK_DIR/page PLAYWRIGHT_DIR=$SDK_DIR CHROMIUM=$CHROMIUM \
    node tests/sdk/browser_sdk.mjs
