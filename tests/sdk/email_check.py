"""A journey e-mails a customer through a real SMTP server: the MIME is parsed, the DKIM
signature verified by dkimpy against the public key, a 451 is retried and a 550 is not."""

import argparse
import base64
import email
import email.policy
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request

import dkim
from aiosmtpd.controller import Controller
from server_api import Server, wait

parser = argparse.ArgumentParser()
parser.add_argument("--host", required=True)
parser.add_argument("--write-key", required=True)
parser.add_argument("--admin-token", required=True)
parser.add_argument("--smtp-port", type=int, required=True)
parser.add_argument("--dkim-key", required=True)
args = parser.parse_args()

received = []  # raw bytes of every e-mail accepted
refusals = {"retry@example.it": 0, "bounce@example.it": 0}
lock = threading.Lock()


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with lock:
            if address == "bounce@example.it":
                refusals[address] += 1
                return "550 5.1.1 no such user"
            if address == "retry@example.it" and refusals[address] == 0:
                refusals[address] += 1
                return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with lock:
            received.append(envelope.original_content)
        return "250 Message accepted"


controller = Controller(Handler(), hostname="127.0.0.1", port=args.smtp_port)
controller.start()


call = Server(args.host, args.write_key, args.admin_token).call


call("POST", "/v1/messages", {
    "slug": "cart",
    "name": "Carrello abbandonato",
    "channel": "email",
    "format": "mjml",
    "subject": "{{ profile.first_name | default: 'Ciao' }}, il tuo carrello ti aspetta",
    "body": """<mjml><mj-body><mj-section><mj-column>
      <mj-text>Ciao {{ profile.first_name }}, nel carrello hai lasciato:</mj-text>
      {% for p in event.properties.products %}<mj-text>{{ p.name }} a € {{ p.price }}</mj-text>{% endfor %}
      <mj-button href="https://negozio.example/carrello">Completa l'ordine</mj-button>
      <mj-text><a href="{{ unsubscribe_url }}">Disiscriviti</a></mj-text>
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

people = {"anna": "anna@example.it", "rita": "retry@example.it", "bruno": "bounce@example.it"}
batch = []
for user, address in people.items():
    batch.append({"type": "identify", "userId": user,
                  "traits": {"email": address, "first_name": user.capitalize()}})
# The journey runner starts at the log's head when it starts: the checkouts come after the
# journey is live.
time.sleep(1.5)
call("POST", "/v1/batch", {"batch": batch}, admin=False)
time.sleep(1)
call("POST", "/v1/batch", {"batch": [
    {"type": "track", "userId": user, "event": "Checkout Started",
     "properties": {"cart_id": f"c-{user}", "products": [{"name": "Borsa in pelle", "price": 89.5}]}}
    for user in people
]}, admin=False)

wait("two e-mails accepted (anna's, and rita's after a 451)", lambda: len(received) >= 2, 60)
by_recipient = {}
for raw in received:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    by_recipient[str(parsed["To"])] = (raw, parsed)
assert set(by_recipient) == {"anna@example.it", "retry@example.it"}, by_recipient.keys()
assert refusals == {"retry@example.it": 1, "bounce@example.it": 1}, refusals

raw, anna = by_recipient["anna@example.it"]
assert anna["Subject"] == "Anna, il tuo carrello ti aspetta", anna["Subject"]
assert str(anna["From"]) == "Negozio Prossimo <news@negozio.example>", anna["From"]
assert anna["Message-ID"].endswith("@negozio.example>"), anna["Message-ID"]
assert anna.get_content_type() == "multipart/alternative", anna.get_content_type()
text = anna.get_body(preferencelist=("plain",)).get_content()
html = anna.get_body(preferencelist=("html",)).get_content()
assert "Borsa in pelle a € 89.5" in text and "https://negozio.example/carrello" in text, text
assert "<" not in text, text
assert "Borsa in pelle a € 89.5" in html and "<!doctype html>" in html.lower(), html[:200]

# DKIM, verified by dkimpy against the public key as DNS would publish it.
public = subprocess.run(["openssl", "rsa", "-in", args.dkim_key, "-pubout", "-outform", "DER"],
                        capture_output=True, check=True).stdout
record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dns(name, timeout=5):
    assert name == b"prossimo._domainkey.negozio.example.", name
    return record


for address, (raw, _) in by_recipient.items():
    assert raw.startswith(b"DKIM-Signature:"), raw[:80]
    assert dkim.verify(raw, dnsfunc=dns), f"DKIM signature of {address} does not verify"
tampered = by_recipient["anna@example.it"][0].replace(b"Borsa in pelle", b"Borsa di carta", 1)
assert not dkim.verify(tampered, dnsfunc=dns), "a changed body still verifies"

# Outcomes on the timelines: sent; refused for good and not retried.
def events(user):
    return call("GET", f"/v1/profiles/user_id:{user}/events")["events"]


def named(user, name):
    return [e for e in events(user) if e.get("event") == name]


wait("anna's Message Sent event", lambda: named("anna", "Message Sent"))
failed = wait("bruno's Message Failed event", lambda: named("bruno", "Message Failed"))
assert failed[0]["properties"]["reason"] == "refused", failed
assert "550" in failed[0]["properties"]["detail"], failed
time.sleep(2)
assert refusals["bounce@example.it"] == 1, "a 550 was retried"
assert len(received) == 2, "an e-mail was sent twice"

# Opens and clicks: the pixel and the links go through the server. Apple's privacy proxy
# (user agent exactly "Mozilla/5.0") is a machine; a person opening a while after the send
# is not; a tracked link redirects to its target.
pixel = re.search(r'<img src="([^"]+/o/[^"]+)"', html).group(1)
cart_link = re.search(r'href="([^"]+/c/[^"]+)"', html).group(1).replace("&amp;", "&")


def fetch(url, agent):
    request = urllib.request.Request(url, headers={"User-Agent": agent})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request) as answer:
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as redirect:
        return redirect.code, dict(redirect.headers)


SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
assert fetch(pixel, "Mozilla/5.0")[0] == 200
time.sleep(5.5)  # past the prefetch window after the send
assert fetch(pixel, SAFARI)[0] == 200
status, headers = fetch(cart_link, SAFARI)
location = {k.lower(): v for k, v in headers.items()}.get("location")
assert (status, location) == (302, "https://negozio.example/carrello"), (status, headers)
opens = wait("anna's two opens", lambda: len(named("anna", "Message Opened")) == 2 and named("anna", "Message Opened"))
assert sorted(o["properties"]["machine"] for o in opens) == [False, True], opens
clicks = wait("anna's click", lambda: named("anna", "Message Clicked"))
assert clicks[0]["properties"]["url"] == "https://negozio.example/carrello", clicks
assert clicks[0]["properties"]["machine"] is False, clicks

# One-click unsubscribe (RFC 8058), as a mail client does it: a POST to the header's URL.
assert anna["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click", anna["List-Unsubscribe-Post"]
url = str(anna["List-Unsubscribe"]).strip("<>")
assert url.startswith(args.host + "/u/"), url
assert url in html, "the body's unsubscribe link is the header's, not tracked"
with urllib.request.urlopen(urllib.request.Request(url, method="GET")) as page:
    assert b"<form" in page.read(), "the page shows its button"
assert call("GET", "/v1/profiles/user_id:anna/messages")["consent"] == [], "a GET changed nothing"
one_click = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST")
one_click.add_header("Content-Type", "application/x-www-form-urlencoded")
with urllib.request.urlopen(one_click) as answer:
    assert answer.status == 200, answer.status
consent = call("GET", "/v1/profiles/user_id:anna/messages")["consent"]
assert [(c["channel"], c["topic"], c["state"], c["source"]) for c in consent] == [
    ("email", "offers", "opted_out", "one_click")], consent
wait("anna's Message Unsubscribed event", lambda: named("anna", "Message Unsubscribed"))

# Her next cart sends nothing: skipped, with the reason, on her timeline.
call("POST", "/v1/batch", {"batch": [
    {"type": "track", "userId": "anna", "event": "Checkout Started",
     "properties": {"cart_id": "c-anna-2", "products": []}}]}, admin=False)
skipped = wait("anna's Message Skipped event", lambda: named("anna", "Message Skipped"))
assert skipped[0]["properties"]["reason"] == "unsubscribed", skipped
time.sleep(1)
assert len(received) == 2, "an unsubscribed customer got an e-mail"
controller.stop()
print("email: 2 e-mails over SMTP with valid DKIM signatures, a 451 retried, a 550 not,"
      " opens (machine flagged) and clicks recorded, one-click unsubscribe honoured")
