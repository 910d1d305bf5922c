#!/usr/bin/env bash
# Console page benchmark (issue #5; BENCHMARKS.md "Console (issue #5)"): a release
# `prossimo serve --demo` on a fresh embedded store (the 10,000-customer demo retailer, its
# analyses run at start), one customer given 100,000 events through the tracking API, then
# every console page requested REQUESTS times in a row by `pagebench` (one client, loopback).
#
#   bash scripts/bench-console.sh [REQUESTS] [HEAVY_EVENTS]     # defaults 50 100000
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-50}
HEAVY=${2:-100000}

cargo build --release --locked -q -p prossimo -p prossimo-bench
DATA=$(mktemp -d)
PORT=18090
PASSWORD=pagebench-password
PROSSIMO_WRITE_KEY=wk_pagebench_write_key PROSSIMO_ADMIN_TOKEN=pat_pagebench_admin_token \
PROSSIMO_ADMIN_PASSWORD=$PASSWORD PROSSIMO_LOG=warn \
    target/release/prossimo --data-dir "$DATA" serve --demo --listen 127.0.0.1:$PORT >"$DATA.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$DATA" "$DATA.log"' EXIT
for _ in $(seq 1 600); do curl -fs http://127.0.0.1:$PORT/health >/dev/null && break; sleep 0.2; done
# The analyst runs every analysis at start on a store never analysed: wait for it.
for _ in $(seq 1 300); do
    curl -fs -H "Authorization: Bearer pat_pagebench_admin_token" http://127.0.0.1:$PORT/v1/analytics/clv >/dev/null && break
    sleep 0.5
done
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); commit $(git describe --always --dirty)"
target/release/pagebench --url http://127.0.0.1:$PORT --email admin@localhost --password $PASSWORD \
    --write-key wk_pagebench_write_key --admin-token pat_pagebench_admin_token \
    --requests "$REQUESTS" --heavy-events "$HEAVY"
echo "RSS of the server: $(awk '/VmRSS/ {printf "%.0f MiB", $2 / 1024}' /proc/$SERVER/status)"
