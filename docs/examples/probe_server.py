"""A ParityRail app probe in Python's standard library (docs/app-probe.md).

Run:  PROBE_SECRET=… PORT=8787 python3 docs/examples/probe_server.py
It answers what each user can use, from the USERS table below (or from the
USERS_JSON environment variable: {"cus_…": {"user": "…", "plan": …}}).
In your app, look the user up in your own database instead.
"""

import hashlib
import hmac
import json
import os
import time
from urllib.parse import parse_qs
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["PROBE_SECRET"].encode()
PREFIX = "/parityrail/access"
TOLERANCE = 300  # seconds, as ParityRail signs with the current time
DEPLOY_SHA = os.environ.get("DEPLOY_SHA", "dev")
USERS = json.loads(os.environ.get("USERS_JSON", "{}"))


def verify(header, path_and_query, body):
    """True when `header` is ParityRail's signature of this exact request."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    signatures = [p.split("=", 1)[1] for p in header.split(",") if p.startswith("v1=")]
    t = parts.get("t", "")
    if not t.isdigit() or abs(time.time() - int(t)) > TOLERANCE:
        return False
    signed = t.encode() + b"." + path_and_query.encode() + b"." + body
    expected = hmac.new(SECRET, signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


def answer(customer, user):
    """What `customer` can use now, or None when the app has no such user."""
    access = USERS.get(customer)
    if access is None:
        return None
    return {
        "customer": customer,
        "user": access.get("user", user),
        "plan": access.get("plan"),
        "features": access.get("features", []),
        "limits": access.get("limits", {}),
        "active": access.get("active", True),
        "deploy_sha": DEPLOY_SHA,
    }


class Probe(BaseHTTPRequestHandler):
    def reply(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def signed(self, body=b""):
        # self.path is the request target exactly as it arrived.
        header = self.headers.get("ParityRail-Signature", "")
        if verify(header, self.path, body):
            return True
        self.reply(401, {"error": "bad signature"})
        return False

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path != PREFIX:
            return self.reply(404, {"error": "not found"})
        if not self.signed():
            return

        params = parse_qs(query)
        customer = params.get("customer", [""])[0]
        user = params.get("user", [""])[0]
        found = answer(customer, user)
        if found is None:
            return self.reply(404, {"customer": customer, "found": False})
        self.reply(200, found)

    def do_POST(self):
        if self.path != PREFIX + "/batch":
            return self.reply(404, {"error": "not found"})
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if not self.signed(body):
            return
        asked = json.loads(body)["customers"]
        self.reply(200, {"customers": [
            answer(c["customer"], c.get("user", "")) or {"customer": c["customer"], "found": False}
            for c in asked
        ]})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8787"))
    print(f"probe listening on http://127.0.0.1:{port}{PREFIX}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Probe).serve_forever()
