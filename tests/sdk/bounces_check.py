"""A journey e-mails two customers through a real Postfix; the destination server (aiosmtpd,
here) refuses one of them after Postfix has accepted it, so Postfix writes the DSN itself
and delivers it to the return path, which it routes to Prossimo's bounce listener: a hard
bounce of that send on the customer's timeline and his e-mail opt-out."""

import argparse
import email
import email.policy
import re
import threading
import time

from aiosmtpd.controller import Controller
from server_api import Server, wait

parser = argparse.ArgumentParser()
parser.add_argument("--host", required=True)
parser.add_argument("--write-key", required=True)
parser.add_argument("--admin-token", required=True)
parser.add_argument("--dest-port", type=int, required=True)
parser.add_argument("--bounce-port", type=int, required=True)
parser.add_argument("--maillog", required=True)
args = parser.parse_args()

received = []  # (envelope sender, raw bytes) of every e-mail accepted
refused = []  # recipients refused at RCPT
lock = threading.Lock()


class Handler:
    """The customers' mail server, behind Postfix: anna exists, bruno does not."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == "bruno@example.it":
            with lock:
                refused.append(address)
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with lock:
            received.append((envelope.mail_from, envelope.original_content))
        return "250 Message accepted"


controller = Controller(Handler(), hostname="127.0.0.1", port=args.dest_port)
controller.start()

call = Server(args.host, args.write_key, args.admin_token).call


def events(user):
    return call("GET", f"/v1/profiles/user_id:{user}/events")["events"]


def named(user, name):
    return [e for e in events(user) if e.get("event") == name]


def consent(user):
    return [(c["channel"], c["topic"], c["state"], c["source"])
            for c in call("GET", f"/v1/profiles/user_id:{user}/messages")["consent"]]


call("POST", "/v1/messages", {
    "slug": "cart",
    "name": "Carrello abbandonato",
    "channel": "email",
    "format": "mjml",
    "subject": "{{ profile.first_name | default: 'Ciao' }}, il tuo carrello ti aspetta",
    "body": """<mjml><mj-body><mj-section><mj-column>
      <mj-text>Ciao {{ profile.first_name }}, hai lasciato qualcosa nel carrello.</mj-text>
      <mj-button href="https://negozio.example/carrello">Completa l'ordine</mj-button>
    </mj-column></mj-section></mj-body></mjml>""",
})
call("POST", "/v1/journeys", {
    "slug": "abandoned-cart",
    "name": "Carrello abbandonato",
    "definition": {
        "trigger": {"event": {"name": "Checkout Started"}},
        "entry": {"instance_key": "properties.cart_id", "reentry": "always"},
        "steps": [{"id": "mail", "type": "send", "channel": "email", "message": "cart", "topic": "offers"}],
    },
})
call("POST", "/v1/journeys/abandoned-cart/publish")

people = {"anna": "anna@example.it", "bruno": "bruno@example.it"}
call("POST", "/v1/batch", {"batch": [
    {"type": "identify", "userId": user, "traits": {"email": address, "first_name": user.capitalize()}}
    for user, address in people.items()
]}, admin=False)
# The journey runner starts at the log's head when it starts: the checkouts come after the
# journey is live.
time.sleep(1.5)
call("POST", "/v1/batch", {"batch": [
    {"type": "track", "userId": user, "event": "Checkout Started", "properties": {"cart_id": f"c-{user}"}}
    for user in people
]}, admin=False)

# Postfix accepted both (a Message Sent each), relayed anna's and had bruno's refused.
wait("anna's e-mail relayed by Postfix", lambda: received, 60)
sender, raw = received[0]
anna = email.message_from_bytes(raw, policy=email.policy.default)
assert str(anna["To"]) == "anna@example.it", anna["To"]
assert sender == "bounces@bounces.negozio.example", f"envelope sender {sender!r}, not the return path"
assert "mx.negozio.example" in str(anna["Received"]), "not relayed by Postfix"
wait("bruno refused by the destination server", lambda: refused, 60)
for user in people:
    wait(f"{user}'s Message Sent event (Postfix's 250)", lambda: named(user, "Message Sent"))
sent = named("bruno", "Message Sent")[0]

# Postfix's DSN, through Prossimo's bounce listener.
bounced = wait("bruno's Message Bounced event", lambda: named("bruno", "Message Bounced"), 60)
assert len(bounced) == 1, bounced
properties = bounced[0]["properties"]
assert properties["bounce"] == "hard", properties
assert properties["code"].startswith("5.1.1"), properties
assert "no such user" in properties["detail"], properties  # the destination's words
assert properties["channel"] == "email", properties
for key in ("send", "message"):
    assert properties.get(key) == sent["properties"].get(key), (key, properties, sent)
assert consent("bruno") == [("email", "*", "opted_out", "hard_bounce")], consent("bruno")

# Postfix's own log: it wrote the non-delivery notification and handed it to the listener.
with open(args.maillog, encoding="utf-8", errors="replace") as log:
    maillog = log.read()
assert re.search(r"to=<bruno@example\.it>.*dsn=5\.1\.1, status=bounced", maillog), maillog
notified = re.search(r"postfix/bounce\[\d+\]: (\w+): sender non-delivery notification: (\w+)", maillog)
assert notified, maillog
dsn_queue_id = notified.group(2)
assert re.search(rf"{dsn_queue_id}: to=<bounces@bounces\.negozio\.example>, "
                 rf"relay=127\.0\.0\.1\[127\.0\.0\.1\]:{args.bounce_port},.*status=sent", maillog), maillog

# Anna's went through: no bounce, no opt-out.
time.sleep(1)
assert named("anna", "Message Bounced") == [], named("anna", "Message Bounced")
assert consent("anna") == [], consent("anna")
assert len(received) == 1 and refused == ["bruno@example.it"], (received, refused)
controller.stop()
print(f"bounces: Postfix relayed anna's e-mail, got a 550 for bruno's and delivered its own DSN"
      f" ({dsn_queue_id}) to the bounce listener: Message Bounced hard {properties['code']},"
      " e-mail opted out (hard_bounce)")
