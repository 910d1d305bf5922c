#!/usr/bin/env bash
# Bounces as real DSNs: a journey on a running `prossimo serve` sends through a real
# Postfix, which accepts both e-mails (250) and relays them to a destination server
# (aiosmtpd, started by the check) that takes anna's and refuses bruno's (550 5.1.1).
# Postfix itself then writes the delivery status notification (RFC 3464) to the envelope
# sender, [email] return_path, whose domain it routes to Prossimo's inbound listener
# ([email] bounce_listen): the check finds bruno's Message Bounced (hard, 5.1.1) and his
# e-mail opt-out (source hard_bounce), and Postfix's log shows it delivered the DSN there.
#
# Postfix comes from Debian's package, installed here if missing with debconf's "No
# configuration" (no /etc/postfix/main.cf written, so no system instance). The test runs a
# private instance of its own, as root: `postfix -c DIR start` with a main.cf and
# master.cf written below (config, queue and data directories under
# target/bounce-test/postfix, log in its maillog, SMTP on 127.0.0.1 and a free port, no
# chroot), and `postfix -c DIR stop` on exit. As root `postfix -c` needs no
# alternate_config_directories in the default main.cf (only the set-gid commands,
# postdrop and postqueue, check that list), so nothing outside target/ is configured.
set -euo pipefail
cd "$(dirname "$0")/../.."

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
POSTFIX=/usr/sbin/postfix
if [ ! -x "$POSTFIX" ]; then
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    $SUDO apt-get update -q >/dev/null
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postfix >/dev/null
fi

# Three free ports: Postfix's SMTP (Prossimo's smtp_url), the destination server, and
# Prossimo's bounce listener.
read -r MTA_PORT DEST_PORT BOUNCE_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

PF=$PWD/target/bounce-test/postfix
stop_postfix() {
    $SUDO "$POSTFIX" -c "$PF/etc" stop >/dev/null 2>&1 || return 0
    for _ in $(seq 1 50); do
        $SUDO "$POSTFIX" -c "$PF/etc" status >/dev/null 2>&1 || return 0
        sleep 0.1
    done
}
# A run killed before its trap may have left its instance running.
[ ! -f "$PF/etc/main.cf" ] || stop_postfix
$SUDO rm -rf "$PF"
mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
cat >"$PF/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.negozio.example
mydomain = negozio.example
myorigin = negozio.example
# Nothing is delivered here: the customers' domain goes to the destination server, the
# return path's domain to Prossimo's bounce listener, anything else fails.
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
mynetworks = 127.0.0.0/8
transport_maps = inline:{ example.it=smtp:[127.0.0.1]:$DEST_PORT, bounces.negozio.example=smtp:[127.0.0.1]:$BOUNCE_PORT }
default_transport = error:5.1.2 this test relays only to example.it and bounces.negozio.example
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtp_dns_support_level = disabled
EOF
# No chroot (no copies of /etc files needed), and the postlog service for maillog_file.
cat >"$PF/etc/master.cf" <<EOF
127.0.0.1:$MTA_PORT inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
$SUDO chown -R root: "$PF"
$SUDO chown postfix "$PF/data"
on_exit() {
    local status=$?
    stop_postfix
    if [ "$status" != 0 ] && [ -f "$PF/maillog" ]; then
        echo "--- the end of Postfix's log, $PF/maillog:" >&2
        tail -n 40 "$PF/maillog" >&2
    fi
}
trap on_exit EXIT
# `start` runs `postfix check` first, which creates the queue's directories; a failure
# is in the log, which on_exit shows.
$SUDO "$POSTFIX" -c "$PF/etc" start

EXTRA_CONFIG=$(printf '[email]\nfrom = "Negozio Prossimo <news@negozio.example>"\nsmtp_url = "smtp://127.0.0.1:%s"\nfirst_retry_seconds = 1\nmax_attempts = 3\nreturn_path = "bounces@bounces.negozio.example"\nbounce_listen = "127.0.0.1:%s"\n' "$MTA_PORT" "$BOUNCE_PORT")
export EXTRA_CONFIG
# In a subshell: serve.sh's exit trap (stopping the server) is its own, and this
# script's stops Postfix. (Not in an `||` list, where set -e would not apply inside.)
(
    source tests/sdk/serve.sh "aiosmtpd==1.4.6"
    "$VENV/bin/python" tests/sdk/bounces_check.py --host "$HOST" --write-key "$WRITE_KEY" \
        --admin-token "$ADMIN_TOKEN" --dest-port "$DEST_PORT" --bounce-port "$BOUNCE_PORT" \
        --maillog "$PF/maillog"
)
