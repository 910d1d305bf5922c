#!/usr/bin/env bash
# SMS and webhook messages against independent implementations: a journey on a running
# `prossimo serve` texts through a provider speaking Twilio's Messages API (started by the
# check), whose status callbacks are signed by Twilio's own library (`twilio`'s
# RequestValidator), and posts a webhook message verified by the Standard Webhooks
# reference library (`standardwebhooks`).
set -euo pipefail
cd "$(dirname "$0")/../.."

SMS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
EXTRA_CONFIG=$(printf '[sms]\nprovider_url = "http://127.0.0.1:%s"\naccount_sid = "AC00000000000000000000000000000001"\nauth_token = "twilio-test-auth-token"\nfrom = "+393000000000"\nsender_ids = { IT = "Negozio" }\ndefault_country = "IT"\n' "$SMS_PORT")
export EXTRA_CONFIG
source tests/sdk/serve.sh "twilio==9.13.0" "standardwebhooks==1.1.0"
"$VENV/bin/python" tests/sdk/channels_check.py --host "$HOST" --write-key "$WRITE_KEY" \
    --admin-token "$ADMIN_TOKEN" --sms-port "$SMS_PORT" \
    --account-sid AC00000000000000000000000000000001 --auth-token twilio-test-auth-token
