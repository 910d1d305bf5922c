#!/usr/bin/env bash
# Prossimo's whole test suite, as CI runs it:
#   1. every Rust test (pure crates, both storage backends, the HTTP API, the real binary);
#   2. the official Segment Python SDK sending to a running `prossimo serve`, and a
#      property-based fuzzer (schemathesis) driving every operation of its OpenAPI
#      document: no 5xx, no undocumented status;
#   3. the Standard Webhooks reference library verifying the server's signed deliveries; a
#      journey's e-mails through a real SMTP server (aiosmtpd), their MIME parsed and their
#      DKIM signatures verified by dkimpy, a 451 retried and a 550 not; a bounce written
#      by a real Postfix as a DSN, recorded by the inbound listener; its SMS through a
#      provider with Twilio's API whose delivery callbacks Twilio's own library signs, and
#      its webhook messages verified by standardwebhooks;
#      the official browser SDK (@segment/analytics-next) in Chromium on another origin;
#   4. the segment-language parser under cargo-fuzz for 30 seconds;
#   5. the web console in a real browser (Chromium) against the demo retailer.
# PostgreSQL is found or started by scripts/postgres.sh (see there).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/postgres.sh

cargo test --workspace --locked
bash tests/sdk/python_sdk.sh
bash tests/api/fuzz.sh
bash tests/sdk/webhooks.sh
bash tests/sdk/email.sh
bash tests/sdk/bounces.sh
bash tests/sdk/channels.sh
bash tests/sdk/browser_sdk.sh
bash scripts/fuzz-segments.sh 30
bash tests/console/run.sh
