"""A journey texts customers through a provider with Twilio's Messages API and posts a
webhook message: the provider's status callbacks are signed by Twilio's own library, the
webhook is verified by the Standard Webhooks reference library."""

import argparse
import base64
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator
from server_api import Server, wait

parser = argparse.ArgumentParser()
parser.add_argument("--host", required=True)
parser.add_argument("--write-key", required=True)
parser.add_argument("--admin-token", required=True)
parser.add_argument("--sms-port", type=int, required=True)
parser.add_argument("--account-sid", required=True)
parser.add_argument("--auth-token", required=True)
args = parser.parse_args()

texts = []  # the form of every text the provider accepted
hooks = []  # (headers, body) of every webhook delivery
lock = threading.Lock()
STOPPED = "+393330021610"


class Provider(BaseHTTPRequestHandler):
    """Twilio's Messages endpoint, as its API reference describes it."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        expected = "Basic " + base64.b64encode(f"{args.account_sid}:{args.auth_token}".encode()).decode()
        if self.path != f"/2010-04-01/Accounts/{args.account_sid}/Messages.json":
            return self.answer(404, {"code": 20404, "message": "Not Found", "status": 404})
        if self.headers.get("Authorization") != expected:
            return self.answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if form["To"] == STOPPED:
            return self.answer(400, {"code": 21610, "status": 400,
                                     "message": "Attempt to send to unsubscribed recipient"})
        with lock:
            texts.append(form)
            sid = "SM%032d" % len(texts)
        self.answer(201, {"sid": sid, "status": "queued", "to": form["To"], "from": form["From"],
                          "body": form["Body"], "account_sid": args.account_sid})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_):
        pass


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        with lock:
            hooks.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_):
        pass


for server in (HTTPServer(("127.0.0.1", args.sms_port), Provider), HTTPServer(("127.0.0.1", 0), Receiver)):
    threading.Thread(target=server.serve_forever, daemon=True).start()
receiver_port = server.server_address[1]

call = Server(args.host, args.write_key, args.admin_token).call


def named(user, name):
    return [e for e in call("GET", f"/v1/profiles/user_id:{user}/events")["events"] if e.get("event") == name]


destination = call("POST", "/v1/destinations", {
    "name": "negozio-crm", "kind": "messages", "url": f"http://127.0.0.1:{receiver_port}/hook"})
call("POST", "/v1/messages", {
    "slug": "cart-sms", "name": "Carrello (SMS)", "channel": "sms",
    "body": "Ciao {{ profile.first_name }}, il tuo carrello da € {{ event.properties.total }} è ancora lì."})
call("POST", "/v1/messages", {
    "slug": "cart-crm", "name": "Carrello al CRM", "channel": "webhook", "destination": "negozio-crm",
    "body": json.dumps({"customer": "{{ profile.first_name }}", "cart": "{{ event.properties.cart_id }}",
                        "total": "{{ event.properties.total }}"})})
call("POST", "/v1/journeys", {
    "slug": "cart-text", "name": "Carrello: SMS",
    "definition": {
        "trigger": {"event": {"name": "Checkout Started"}},
        "entry": {"instance_key": "properties.cart_id", "reentry": "always"},
        "steps": [
            {"id": "text", "type": "send", "channel": "sms", "message": "cart-sms", "topic": "offers", "next": "crm"},
            {"id": "crm", "type": "send", "channel": "webhook", "message": "cart-crm", "topic": "offers"},
        ],
    },
})
call("POST", "/v1/journeys/cart-text/publish")
time.sleep(1.5)
people = {"anna": "347 123 4567", "stop": STOPPED}
call("POST", "/v1/batch", {"batch": [
    {"type": "identify", "userId": user, "traits": {"phone": phone, "first_name": user.capitalize()}}
    for user, phone in people.items()]}, admin=False)
time.sleep(1)
call("POST", "/v1/batch", {"batch": [
    {"type": "track", "userId": user, "event": "Checkout Started",
     "properties": {"cart_id": f"c-{user}", "total": 129.9}} for user in people]}, admin=False)

text = wait("anna's text at the provider", lambda: texts and texts[0])
assert text["To"] == "+393471234567", text
assert text["From"] == "Negozio", text
assert text["Body"] == "Ciao Anna, il tuo carrello da € 129.9 è ancora lì.", text
callback = text["StatusCallback"]
assert callback.startswith(args.host + "/hooks/sms/"), callback
sent = wait("anna's Message Sent (sms)", lambda: [e for e in named("anna", "Message Sent")
                                                  if e["properties"]["channel"] == "sms"])
assert sent[0]["properties"]["message_id"] == "SM%032d" % 1, sent

# The provider reports, signed by Twilio's library: the steps on the way, then delivered.
validator = RequestValidator(args.auth_token)


def report(status, signature=None):
    form = {"MessageSid": "SM%032d" % 1, "MessageStatus": status, "To": text["To"],
            "From": text["From"], "AccountSid": args.account_sid, "ApiVersion": "2010-04-01"}
    request = urllib.request.Request(callback, data=urllib.parse.urlencode(form).encode(), method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    request.add_header("X-Twilio-Signature", signature or validator.compute_signature(callback, form))
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


assert report("delivered", signature="bm90IHRoZSBzaWduYXR1cmU=") == 401
assert report("sent") == 204
assert report("delivered") == 204
assert report("delivered") == 204
delivered = wait("anna's Message Delivered", lambda: named("anna", "Message Delivered"))
time.sleep(0.5)
assert len(named("anna", "Message Delivered")) == 1, "reported twice, recorded once"
assert delivered[0]["properties"]["message"] == "cart-sms", delivered

# A customer who replied STOP to the provider is skipped, and opted out here too.
skipped = wait("the STOP customer's Message Skipped", lambda: named("stop", "Message Skipped"))
assert skipped[0]["properties"]["reason"] == "unsubscribed", skipped
consent = call("GET", "/v1/profiles/user_id:stop/messages")["consent"]
assert [(c["channel"], c["state"], c["source"]) for c in consent] == [("sms", "opted_out", "provider")], consent

# The webhook message, delivered and verified by the Standard Webhooks library.
# Both customers' webhooks (the STOP was for SMS only); anna's is checked.
wait("both webhook messages", lambda: len(hooks) == 2)
verifier = Webhook(destination["secret"])
verified = [(headers, verifier.verify(body, headers)) for headers, body in hooks]
headers, payload = next((h, p) for h, p in verified if p["data"]["body"]["customer"] == "Anna")
assert payload["type"] == "message.webhook", payload
assert payload["data"]["body"] == {"customer": "Anna", "cart": "c-anna", "total": 129.9}, payload
assert payload["data"]["journey"] == "cart-text", payload
assert headers["webhook-id"].startswith("msg_send_"), headers
print("channels: an SMS through a Twilio-shaped provider (E.164, sender id per country), its delivery"
      " signed by twilio's RequestValidator recorded once, a STOP honoured; a webhook message"
      " verified by standardwebhooks")
