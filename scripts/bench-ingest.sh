#!/usr/bin/env bash
# Ingest benchmark (BENCHMARKS.md): durable batch throughput and latency, single-message
# latency at a fixed rate, and RSS after 1,000,000 profiles, against a release build of
# `prossimo serve` on a fresh embedded store. The load generator runs on the same machine.
#
#   bash scripts/bench-ingest.sh [CONNECTIONS] [SECONDS]
#
# With PROSSIMO_BENCH_DATABASE=postgres://… the same runs go against PostgreSQL instead
# (use an empty database: the runs write millions of rows).
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${1:-32}
SECONDS_PER_RUN=${2:-30}

cargo build --release --locked -q -p prossimo -p prossimo-bench
DATA=$(mktemp -d)
PORT=18080
KEY=wk_bench_write_key
PROSSIMO_WRITE_KEY=$KEY PROSSIMO_ADMIN_TOKEN=pat_bench_admin_token_1 PROSSIMO_LOG=warn \
    target/release/prossimo ${PROSSIMO_BENCH_DATABASE:+--database "$PROSSIMO_BENCH_DATABASE"} --data-dir "$DATA" \
    serve --listen 127.0.0.1:$PORT >"$DATA.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$DATA" "$DATA.log"' EXIT
for _ in $(seq 1 100); do curl -fs http://127.0.0.1:$PORT/health >/dev/null && break; sleep 0.1; done
LOAD="target/release/loadgen --url http://127.0.0.1:$PORT --write-key $KEY --people 1000000"
rss() { awk '/VmRSS/ {printf "%.0f MiB\n", $2 / 1024}' /proc/$SERVER/status; }

echo "== store: ${PROSSIMO_BENCH_DATABASE:-embedded SQLite in $DATA}"
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== 1. single messages at a fixed 2,000 requests/s for ${SECONDS_PER_RUN}s on the empty store"
$LOAD --start 3000000000 rate --rate 2000 --duration "$SECONDS_PER_RUN"
echo "== 2. first 1,000,000 messages (each of the 1,000,000 people once), $CONNECTIONS connections, batches of 100"
$LOAD --start 0 batch --connections "$CONNECTIONS" --size 100 --total 1000000 --duration 600
echo "RSS with 1,000,000 profiles: $(rss)"
echo "== 3. sustained batch ingest for ${SECONDS_PER_RUN}s on the 1M-profile store (repeat visitors)"
$LOAD --start 1000000000 batch --connections "$CONNECTIONS" --size 100 --duration "$SECONDS_PER_RUN"
echo "RSS: $(rss)"
echo "== 4. single messages at a fixed 2,000 requests/s for ${SECONDS_PER_RUN}s on the 1M-profile store"
$LOAD --start 2000000000 rate --rate 2000 --duration "$SECONDS_PER_RUN"
echo "RSS: $(rss); store on disk: $(du -sh "$DATA" | cut -f1)"
