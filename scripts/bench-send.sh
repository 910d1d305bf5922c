#!/usr/bin/env bash
# Send benchmark (issue #16 item 10 (b); BENCHMARKS.md "Sending e-mail"): N marketing
# e-mails (MJML + Liquid per person, text part, tracked links, one-click unsubscribe,
# DKIM) handed by the real sender over pooled SMTP connections to postfix's smtp-sink, the
# standard SMTP benchmarking sink, on this machine.
#
#   bash scripts/bench-send.sh [SENDS] [CONNECTIONS]     # defaults 100000 8
#
# Needs /usr/sbin/smtp-sink (Debian's postfix; installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
SENDS=${1:-100000}
CONNECTIONS=${2:-8}
if [ ! -x /usr/sbin/smtp-sink ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
fi
cargo build --release --locked -q -p prossimo-bench --bin sendbench
mkdir -p target/bench-send
[ -f target/bench-send/dkim.pem ] || openssl genrsa -out target/bench-send/dkim.pem 2048 2>/dev/null
PORT=2525
/usr/sbin/smtp-sink -u nobody 127.0.0.1:$PORT 256 &
SINK=$!
trap 'kill $SINK 2>/dev/null || true' EXIT
sleep 0.5
echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
target/release/sendbench --sends "$SENDS" --smtp 127.0.0.1:$PORT --connections "$CONNECTIONS" --dkim-key target/bench-send/dkim.pem
