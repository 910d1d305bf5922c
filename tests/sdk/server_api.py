"""The running server's API as the client checks call it: admin token or write key."""

import base64
import json
import time
import urllib.error
import urllib.request


class Server:
    def __init__(self, host, write_key, admin_token):
        self.host = host
        self.write_key = write_key
        self.admin_token = admin_token

    def call(self, method, path, body=None, admin=True):
        """Sends `body` as JSON; the answer's JSON (None when empty)."""
        request = urllib.request.Request(self.host + path, method=method)
        if admin:
            request.add_header("Authorization", "Bearer " + self.admin_token)
        else:
            key = base64.b64encode((self.write_key + ":").encode()).decode()
            request.add_header("Authorization", "Basic " + key)
        data = None
        if body is not None:
            request.add_header("Content-Type", "application/json")
            data = json.dumps(body).encode()
        try:
            with urllib.request.urlopen(request, data) as response:
                text = response.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as refused:
            raise SystemExit(f"FAIL: {method} {path}: {refused.code} {refused.read().decode()}")


def wait(what, done, seconds=30):
    """`done()`'s first truthy answer, asked every 0.2 s; the check fails after `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = done()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"FAIL: {what} within {seconds} s")
