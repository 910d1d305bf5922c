#!/usr/bin/env bash
# E-mail against real components: a journey on a running `prossimo serve` sends through
# a real SMTP server (aiosmtpd, started by the check) that accepts, refuses for now (451,
# retried) and refuses for good (550, not retried); the check parses the MIME and verifies
# the DKIM signature with an independent verifier (dkimpy).
set -euo pipefail
cd "$(dirname "$0")/../.."

KEYS=target/email-test
mkdir -p "$KEYS"
[ -f "$KEYS/dkim.pem" ] || openssl genrsa -out "$KEYS/dkim.pem" 2048 2>/dev/null
SMTP_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
EXTRA_CONFIG=$(printf '[email]\nfrom = "Negozio Prossimo <news@negozio.example>"\nsmtp_url = "smtp://127.0.0.1:%s"\nfirst_retry_seconds = 1\nmax_attempts = 3\ndkim_domain = "negozio.example"\ndkim_selector = "prossimo"\ndkim_key_file = "%s"\n' "$SMTP_PORT" "$PWD/$KEYS/dkim.pem")
export EXTRA_CONFIG
source tests/sdk/serve.sh "aiosmtpd==1.4.6" "dkimpy==1.1.8"
"$VENV/bin/python" tests/sdk/email_check.py --host "$HOST" --write-key "$WRITE_KEY" \
    --admin-token "$ADMIN_TOKEN" --smtp-port "$SMTP_PORT" --dkim-key "$KEYS/dkim.pem"
