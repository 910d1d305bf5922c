"""Sends messages with the official Segment Python SDK and checks what Prossimo stored."""

import argparse
import json
import sys
import urllib.request

import segment.analytics as analytics
from segment.analytics import Client

parser = argparse.ArgumentParser()
parser.add_argument("--host", required=True)
parser.add_argument("--write-key", required=True)
parser.add_argument("--admin-token", required=True)
args = parser.parse_args()

errors = []
analytics.write_key = args.write_key
analytics.host = args.host
analytics.on_error = lambda error, items: errors.append(repr(error))

# An anonymous visitor browses, then logs in: alias links the two.
analytics.track(anonymous_id="py-anon-1", event="Product Viewed",
                properties={"product_id": "SC-001", "price": 89.0}, message_id="py-track-1")
analytics.identify(user_id="py-user-1", traits={"email": "Py.User@Example.it", "name": "Pia Rossi"},
                   message_id="py-identify-1")
analytics.page(user_id="py-user-1", category="Shop", name="Home",
               properties={"url": "https://shop.example.it/"}, message_id="py-page-1")
analytics.group(user_id="py-user-1", group_id="py-group-acme", traits={"name": "Acme"},
                message_id="py-group-1")
analytics.alias(previous_id="py-anon-1", user_id="py-user-1", message_id="py-alias-1")
analytics.track(user_id="py-user-1", event="Order Completed",
                properties={"order_id": "po-1", "revenue": 42.5, "currency": "EUR"}, message_id="py-track-2")
analytics.flush()
analytics.shutdown()

# A second client with gzip-compressed batches.
gzip_client = Client(args.write_key, host=args.host, gzip=True,
                     on_error=lambda error, items: errors.append(repr(error)))
gzip_client.track(user_id="py-user-1", event="Email Opened", message_id="py-gzip-1")
gzip_client.flush()
gzip_client.shutdown()


def get(path):
    request = urllib.request.Request(args.host + path, headers={"Authorization": "Bearer " + args.admin_token})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


checks = []


def check(name, ok, detail=""):
    checks.append(ok)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))


check("the SDK reported no delivery error", not errors, errors)
profile = get("/v1/profiles/user_id:py-user-1")
identifiers = sorted(f"{i['kind']}:{i['value']}" for i in profile["identifiers"])
check("identifiers merged into one profile",
      identifiers == ["anonymous_id:py-anon-1", "email:py.user@example.it", "user_id:py-user-1"], identifiers)
check("the anonymous profile was merged in", len(profile["merged_profiles"]) == 1, profile["merged_profiles"])
check("same profile by anonymous id", get("/v1/profiles/anonymous_id:py-anon-1")["id"] == profile["id"])
expected_types = {"identify": 1, "track": 3, "page": 1, "group": 1, "alias": 1}
check("counts by type", profile["counts_by_type"] == expected_types, profile["counts_by_type"])
check("traits", profile["traits"].get("name") == "Pia Rossi", profile["traits"])
check("group membership", profile["groups"] == ["py-group-acme"], profile["groups"])
check("order revenue", profile["orders"] == {"count": 1, "revenue": 42.5, "refunded": 0.0, "voided": 0,
                                            "currency": "EUR"},
      profile["orders"])
check("channel from the SDK's library name", profile["counts_by_channel"] == {"server": 7},
      profile["counts_by_channel"])
page = get("/v1/profiles/user_id:py-user-1/events?limit=100")
ids = sorted(e["messageId"] for e in page["events"])
expected_ids = sorted(["py-track-1", "py-identify-1", "py-page-1", "py-group-1", "py-alias-1", "py-track-2", "py-gzip-1"])
check("exactly the sent messages arrived", ids == expected_ids, ids)
library = {e["context"].get("library", {}).get("name") for e in page["events"]}
check("library recorded", library == {"analytics-python"}, library)

failed = checks.count(False)
print(f"python-sdk: {len(checks) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
