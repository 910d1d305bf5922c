#!/usr/bin/env bash
# Timer benchmark (issue #16 item 10 (c) and (d); BENCHMARKS.md "Journey timers"): N
# instances of a published journey waiting in a one-hour delay on a fresh embedded store,
# then the clock moves past their hour and the real journey runner fires them; half-way it
# is stopped and started again. Prints disk per instance, timers and steps per second, the
# time until timers fire after a start and after the restart, and peak memory.
#
#   bash scripts/bench-timers.sh [INSTANCES] [CUSTOMERS]     # defaults 1000000 100000
set -euo pipefail
cd "$(dirname "$0")/.."
INSTANCES=${1:-1000000}
CUSTOMERS=${2:-100000}
cargo build --release --locked -q -p prossimo-bench --bin timerbench
echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
target/release/timerbench --instances "$INSTANCES" --customers "$CUSTOMERS"
