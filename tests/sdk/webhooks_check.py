"""Saves an audience and a webhook destination on a live server, makes a customer enter
the audience, and verifies every delivery with the Standard Webhooks reference library."""

import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from server_api import Server

parser = argparse.ArgumentParser()
parser.add_argument("--host", required=True)
parser.add_argument("--write-key", required=True)
parser.add_argument("--admin-token", required=True)
args = parser.parse_args()

received = []  # (headers, body) of every delivery


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_):
        pass


receiver = HTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=receiver.serve_forever, daemon=True).start()


call = Server(args.host, args.write_key, args.admin_token).call


call("POST", "/v1/segments", {
    "slug": "store-regulars",
    "name": "Store regulars",
    "definition": 'count(event "Order Completed" where channel == "store" within 90d) >= 2',
})
destination = call("POST", "/v1/destinations", {
    "name": "python-receiver",
    "kind": "segments",
    "url": "http://127.0.0.1:%d/hook" % receiver.server_address[1],
})
webhook = Webhook(destination["secret"])

for n in range(2):
    call("POST", "/v1/track", {
        "userId": "giulia-7",
        "event": "Order Completed",
        "messageId": "till-%d" % n,
        "context": {"channel": "store"},
        "properties": {"order_id": "R-%d" % n, "revenue": 49.0, "currency": "EUR"},
    }, admin=False)

deadline = time.time() + 30
while not received and time.time() < deadline:
    time.sleep(0.1)
assert received, "no delivery within 30 s"

headers, body = received[0]
payload = webhook.verify(body, headers)  # raises if the signature is wrong
assert payload["type"] == "segment.entered", payload
assert payload["data"]["segment"] == "store-regulars", payload
profile = call("GET", "/v1/profiles/user_id:giulia-7")
assert payload["data"]["profile_id"] == profile["id"], (payload, profile["id"])

# The library must refuse a tampered body: the check above is not vacuous.
try:
    webhook.verify(body.replace(b"store-regulars", b"store-regularz"), headers)
    raise AssertionError("a tampered body was accepted")
except WebhookVerificationError:
    pass

print("webhooks: %d delivery verified by standardwebhooks (%s)" % (len(received), headers["webhook-id"]))
