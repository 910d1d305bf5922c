#!/usr/bin/env bash
# Audience benchmark (issue #4, item 6; BENCHMARKS.md "Audiences (issue #4)"): 100 segments
# over 1,000,000 profiles on a release build of `prossimo serve` with a fresh embedded store.
#
#   bash scripts/bench-segments.sh [PEOPLE] [SECONDS]      # defaults 1000000 30
#
# 1. loads PEOPLE profiles (one realistic shop event each, with traits, event times spread
#    over 400 days: `loadgen --payload shop`), records the server's RSS;
# 2. saves the 100 audiences of `prossimo_bench::audiences()` and the probe segment through
#    the API, a `segments` destination for the probe pointing at the bench receiver; times
#    the decider's rebuild after the last save and until it has caught up with the event log
#    (a sentinel probe event counted), RSS after (segbench define);
# 3. for each background rate in RATES (default "1000 10000" events/s, open loop, batches
#    of 100, SECONDS + 4 s; a rate may repeat, e.g. RATES="1000 10000 10000 10000" for
#    three samples of the tail from one load): 20 probes/s of `Bench Probe` for fresh
#    people; a local receiver checks each signed `segment.entered` and the latency from
#    send to arrival (segbench probe);
# 4. stops the server and times `Engine::open` (the full rebuild of all 100 segments)
#    on the same data with the engine's heap (segbench recompute --breakdown).
# The load generator, the probe client and the receiver share the server's cores. Every
# phase reports the CPU seconds of the server, of the bench clients and of everything else
# on the machine (other people's builds), and its wall time. With PERF=1, `perf record`
# samples the server during the last rate and prints where its threads spend the time;
# PERF=callgraph adds DWARF call graphs and prints the time spent inside the decider's and
# the writer's main functions (inclusive).
# The lines starting with "| " are the results table (repeated at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
PEOPLE=${1:-1000000}
SECONDS_PER_RATE=${2:-30}
RATES=${RATES:-"1000 10000"}
PROBE_RATE=${PROBE_RATE:-20}

cargo build --release --locked -q -p prossimo -p prossimo-bench
DATA=$(mktemp -d)
PORT=18080
RECEIVER=127.0.0.1:18091
KEY=wk_bench_write_key
TOKEN=pat_bench_admin_token_1
URL=http://127.0.0.1:$PORT
# The probe's webhook receiver listens on this machine.
printf '[destinations]\nallowed_private_networks = ["127.0.0.1"]\n' >"$DATA.toml"
PROSSIMO_WRITE_KEY=$KEY PROSSIMO_ADMIN_TOKEN=$TOKEN PROSSIMO_LOG=warn \
    target/release/prossimo --config "$DATA.toml" --data-dir "$DATA" serve --listen 127.0.0.1:$PORT >"$DATA.log" 2>&1 &
SERVER=$!
LOADPID=
cleanup() {
    [ -n "$LOADPID" ] && kill "$LOADPID" 2>/dev/null || true
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -rf "$DATA" "$DATA.log" "$DATA".load.* "$DATA.summary" "$DATA.perf" "$DATA.times" "$DATA.children" "$DATA.perf.txt"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -fs $URL/health >/dev/null && break; sleep 0.1; done
LOAD="target/release/loadgen --url $URL --write-key $KEY --people $PEOPLE --payload shop"
SEG=target/release/segbench
SUMMARY="$DATA.summary"
rss() { awk '/VmRSS/ {r=$2} /VmHWM/ {h=$2} END {printf "%.0f MiB (peak %.0f MiB)\n", r / 1024, h / 1024}' /proc/$SERVER/status; }
# CPU seconds: the whole machine (busy; steal, the hypervisor's share, apart), the server,
# and this shell's finished children (the bench clients: `times` must run in this shell,
# not in a command substitution, whose children are its own).
machine_cpu() { awk '/^cpu / {printf "%.2f %.2f", ($2 + $3 + $4 + $7 + $8) / 100, $9 / 100}' /proc/stat; }
server_cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' /proc/$SERVER/stat 2>/dev/null || echo "$MARK_SERVER"; }
children_cpu() {
    times >"$DATA.times"
    awk 'NR == 2 {gsub(/[ms]/, " "); printf "%.2f", $1 * 60 + $2 + $3 * 60 + $4}' "$DATA.times"
}
mark() {
    read -r MARK_MACHINE MARK_STEAL <<<"$(machine_cpu)"
    MARK_SERVER=$(server_cpu)
    children_cpu >"$DATA.children"
    MARK_CHILDREN=$(cat "$DATA.children")
    PHASE_START=$SECONDS
}
phase() {
    local machine steal server children wall
    read -r machine steal <<<"$(machine_cpu)"
    machine=$(awk -v a="$machine" -v b="$MARK_MACHINE" 'BEGIN {printf "%.1f", a - b}')
    steal=$(awk -v a="$steal" -v b="$MARK_STEAL" 'BEGIN {printf "%.1f", a - b}')
    server=$(awk -v a="$(server_cpu)" -v b="$MARK_SERVER" 'BEGIN {printf "%.1f", a - b}')
    children_cpu >"$DATA.children"
    children=$(awk -v a="$(cat "$DATA.children")" -v b="$MARK_CHILDREN" 'BEGIN {printf "%.1f", a - b}')
    wall=$((SECONDS - PHASE_START))
    echo "-- $1: $wall s wall; CPU-s: server $server, bench clients $children, other processes $(awk -v m="$machine" -v s="$server" -v c="$children" 'BEGIN {o = m - s - c; printf "%.1f", o < 0 ? 0 : o}') (machine busy $machine of $((wall * $(nproc))) available; hypervisor steal $steal); load average $(cut -d' ' -f1-3 /proc/loadavg)"
    mark
}
table() { tee -a /dev/stderr | grep '^| ' >>"$SUMMARY" || true; }

echo "== store: embedded SQLite in $DATA; $(target/release/prossimo --version 2>/dev/null || echo prossimo) at $(git describe --always --dirty 2>/dev/null || echo '?')"
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
mark
echo "== 1. $PEOPLE profiles: one shop event each (with traits, times over 400 days), 32 connections, batches of 100"
$LOAD --history-days 400 --traits --start 0 batch --connections 32 --size 100 --total "$PEOPLE" --duration 7200
echo "| RSS of \`prossimo serve\` with $PEOPLE profiles, no segments | $(rss) |" | table
phase "load"

echo "== 2. 100 segments + the probe segment and its destination; waiting for the decider"
$SEG define --url $URL --admin-token $TOKEN --write-key $KEY --receiver-url "http://$RECEIVER/hook" 2>&1 | table
echo "| (c) RSS of \`prossimo serve\` with the decider's state for 101 segments | $(rss) |" | table
phase "define and rebuild"

echo "== 3. ingest-to-webhook latency under background load (probes at $PROBE_RATE/s for ${SECONDS_PER_RATE}s per rate)"
START=1000000000
PHASE=0
for RATE in $RATES; do
    PHASE=$((PHASE + 1))
    echo "-- background: $RATE shop events/s (live, returning people), batches of 100"
    $LOAD --start $START paced --rate "$RATE" --size 100 --duration $((SECONDS_PER_RATE + 4)) >"$DATA.load.$RATE" 2>&1 &
    LOADPID=$!
    PERFPID=
    if [ "${PERF:-0}" != 0 ] && [ "$RATE" = "${RATES##* }" ]; then
        if [ "$PERF" = callgraph ]; then
            perf record -F 49 --call-graph dwarf,16384 -p "$SERVER" -o "$DATA.perf" -- sleep 20 >/dev/null 2>&1 &
        else
            perf record -F 199 -p "$SERVER" -o "$DATA.perf" -- sleep "$SECONDS_PER_RATE" >/dev/null 2>&1 &
        fi
        PERFPID=$!
    fi
    $SEG probe --url $URL --write-key $KEY --admin-token $TOKEN --listen $RECEIVER \
        --run "r$RATE-$PHASE" --rate "$PROBE_RATE" --duration "$SECONDS_PER_RATE" --warmup 2 --settle 60 2>&1 | table
    wait $LOADPID
    LOADPID=
    cat "$DATA.load.$RATE"
    ACHIEVED=$(grep -o '"messages_per_s":[0-9.]*' "$DATA.load.$RATE" | cut -d: -f2 | xargs printf "%.0f")
    BATCH_P99=$(grep -o '"p99_ms":[0-9.]*' "$DATA.load.$RATE" | cut -d: -f2)
    echo "| background load at $RATE events/s | achieved $ACHIEVED events/s, batch ack p99 $BATCH_P99 ms; server RSS $(rss) |" | table
    phase "latency at $RATE events/s"
    if [ -n "$PERFPID" ]; then
        wait "$PERFPID" || true
        echo "-- perf: server CPU by thread, then the hottest symbols (self time), at $RATE events/s"
        perf report -i "$DATA.perf" --no-children --sort comm -g none --stdio 2>/dev/null >"$DATA.perf.txt" || true
        grep -v '^#' "$DATA.perf.txt" | grep -v '^$' | sed -n 1,8p || true
        perf report -i "$DATA.perf" --no-children --sort comm,dso,symbol -g none --stdio 2>/dev/null >"$DATA.perf.txt" || true
        grep -v '^#' "$DATA.perf.txt" | grep -v '^$' | sed 's/ *[-] *[-] *$//' | cut -c1-150 | sed -n 1,40p || true
        if [ "$PERF" = callgraph ]; then
            for THREAD in prossimo-decide prossimo-writer; do
                echo "-- perf: inclusive time in $THREAD's functions (% of all server samples)"
                perf report -i "$DATA.perf" --children --comm "$THREAD" --sort symbol -g none --stdio 2>/dev/null >"$DATA.perf.txt" || true
                grep -E 'prossimo_|Engine|Store|Pipeline|sqlite3_step|sqlite3VdbeHalt|fsync|fdatasync|serde_json::de|write_transaction' "$DATA.perf.txt" \
                    | grep -v '^#' | sed 's/ *[-] *[-] *$//' | cut -c1-170 | sed -n 1,30p || true
            done
        fi
        mark # perf's own work is nobody's phase
    fi
    START=$((START + 100000000))
done

echo "== 4. full recompute: Engine::open on the same store with the server stopped"
echo "server RSS before stopping: $(rss); store on disk $(du -sh "$DATA" | cut -f1)"
SERVER_TOTAL=$(server_cpu)
kill -INT "$SERVER"
wait "$SERVER" 2>/dev/null || true
# Reaped, the server's own CPU joins this shell's children: not a bench client's.
MARK_CHILDREN=$(awk -v a="$MARK_CHILDREN" -v b="$SERVER_TOTAL" 'BEGIN {printf "%.2f", a + b}')
$SEG recompute --data-dir "$DATA" --breakdown 2>&1 | table
phase "recompute"
echo "== total $SECONDS s"
echo "== results ($PEOPLE profiles, 100 segments + probe; $(nproc) cores $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo "| what | result |"
echo "|---|---|"
cat "$SUMMARY"
