#!/usr/bin/env python3
"""A fake Firebase Cloud Messaging for msgr's tests: Google's OAuth2 token
endpoint and FCM's HTTP v1 messages:send, on loopback.

  fake_fcm.py --port PORT --public-key PUB.pem --log FILE [--project ID]

POST /token  (grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer,
  assertion=JWT): the JWT's structure, claims (iss, scope, aud = this URL,
  iat, exp = iat + 3600) and its RS256 signature (openssl dgst -verify with
  the service account's public key) are checked; then
  {"access_token", "expires_in": 3600, "token_type": "Bearer"}, else 400
  invalid_grant.
POST /v1/projects/PROJECT/messages:send with "Authorization: Bearer" one
  of the tokens issued: 200 {"name": "projects/PROJECT/messages/N"}; by the
  device token's prefix:
    unregistered-...  404 NOT_FOUND, errorCode UNREGISTERED
    invalid-...       400 INVALID_ARGUMENT, a fieldViolation message.token
    quota-...         429 QUOTA_EXCEEDED with Retry-After: 120
    down-...          503 UNAVAILABLE
    mismatch-...      403 PERMISSION_DENIED, errorCode SENDER_ID_MISMATCH
  A missing or unknown bearer token: 401 UNAUTHENTICATED.
POST /revoke: every access token issued so far is refused from now on.

Every request is one JSON line in the log file: {"kind": "token", "claims",
"header", "assertion"} or {"kind": "send", "project", "auth", "body"}
(the push as sent) and "status" (the answer's).
"""

import argparse
import base64
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.tokens = set()
        self.issued = 0
        self.sent = 0


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_rs256(pub, signed, sig):
    """openssl dgst -sha256 -verify: the standard library has no RSA"""
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(sig)
        path = f.name
    try:
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub,
                            "-signature", path], input=signed,
                           capture_output=True)
        return r.returncode == 0
    finally:
        os.unlink(path)


def fcm_error(code, status, message, error_code=None, token_field=False):
    details = []
    if error_code:
        details.append({"@type": FCM_ERROR, "errorCode": error_code})
    if token_field:
        details.append({"@type": BAD_REQUEST, "fieldViolations": [
            {"field": "message.token", "description": message}]})
    return {"error": {"code": code, "message": message, "status": status,
                      "details": details}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, doc, headers=None):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def record(self, entry):
        st = self.server.state
        with st.lock:
            with open(st.args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        path = urllib.parse.urlsplit(self.path).path

        if path == "/token":
            return self.token(body)
        if path == "/revoke":
            with self.server.state.lock:
                self.server.state.tokens.clear()
            return self.answer(200, {})
        parts = path.split("/")
        if (len(parts) == 5 and parts[1] == "v1" and parts[2] == "projects"
                and parts[4] == "messages:send"):
            return self.send(parts[3], body)
        return self.answer(404, fcm_error(404, "NOT_FOUND", "no such path"))

    def token(self, body):
        st = self.server.state
        form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
        why = None
        header = claims = None
        assertion = (form.get("assertion") or [""])[0]
        try:
            if (form.get("grant_type") or [""])[0] != GRANT:
                raise ValueError("grant_type is not jwt-bearer")
            h, c, s = assertion.split(".")
            header = json.loads(b64url(h))
            claims = json.loads(b64url(c))
            if header != {"alg": "RS256", "typ": "JWT"}:
                raise ValueError("header %r" % header)
            want = "http://127.0.0.1:%d/token" % st.args.port
            if claims.get("aud") != want:
                raise ValueError("aud %r" % claims.get("aud"))
            if claims.get("scope") != SCOPE:
                raise ValueError("scope %r" % claims.get("scope"))
            if not claims.get("iss"):
                raise ValueError("no iss")
            iat, exp = claims.get("iat"), claims.get("exp")
            if (not isinstance(iat, int) or exp != iat + 3600
                    or abs(iat - time.time()) > 300):
                raise ValueError("iat %r exp %r" % (iat, exp))
            if not verify_rs256(st.args.public_key, (h + "." + c).encode(),
                                b64url(s)):
                raise ValueError("the signature does not verify")
        except ValueError as e:
            why = str(e)

        entry = {"kind": "token", "header": header, "claims": claims,
                 "assertion": assertion}
        if why:
            entry.update(status=400, error=why)
            self.record(entry)
            return self.answer(400, {"error": "invalid_grant",
                                     "error_description": why})
        with st.lock:
            st.issued += 1
            token = "ya29.fake-%d" % st.issued
            st.tokens.add(token)
        entry.update(status=200, token=token)
        self.record(entry)
        return self.answer(200, {"access_token": token, "expires_in": 3600,
                                 "token_type": "Bearer"})

    def send(self, project, body):
        st = self.server.state
        auth = self.headers.get("Authorization") or ""
        entry = {"kind": "send", "project": project, "auth": auth}
        try:
            doc = json.loads(body)
            entry["body"] = doc
            token = doc["message"]["token"]
        except (ValueError, KeyError, TypeError):
            entry["status"] = 400
            self.record(entry)
            return self.answer(400, fcm_error(400, "INVALID_ARGUMENT",
                                              "not a message"))

        with st.lock:
            authorized = (auth.startswith("Bearer ")
                          and auth[7:] in st.tokens)
            st.sent += 1
            n = st.sent

        headers = None
        if not authorized:
            status, doc = 401, fcm_error(401, "UNAUTHENTICATED",
                                         "Request had invalid authentication"
                                         " credentials.")
        elif project != st.args.project:
            status, doc = 403, fcm_error(403, "PERMISSION_DENIED",
                                         "not this project's")
        elif token.startswith("unregistered-"):
            status, doc = 404, fcm_error(404, "NOT_FOUND",
                                         "Requested entity was not found.",
                                         "UNREGISTERED")
        elif token.startswith("invalid-"):
            status, doc = 400, fcm_error(400, "INVALID_ARGUMENT",
                                         "The registration token is not a"
                                         " valid FCM registration token",
                                         "INVALID_ARGUMENT", True)
        elif token.startswith("quota-"):
            status, doc = 429, fcm_error(429, "RESOURCE_EXHAUSTED",
                                         "Quota exceeded.", "QUOTA_EXCEEDED")
            headers = {"Retry-After": "120"}
        elif token.startswith("down-"):
            status, doc = 503, fcm_error(503, "UNAVAILABLE",
                                         "The service is currently"
                                         " unavailable.", "UNAVAILABLE")
        elif token.startswith("mismatch-"):
            status, doc = 403, fcm_error(403, "PERMISSION_DENIED",
                                         "SenderId mismatch",
                                         "SENDER_ID_MISMATCH")
        else:
            status, doc = 200, {"name": "projects/%s/messages/%d"
                                        % (project, n)}

        entry["status"] = status
        self.record(entry)
        return self.answer(status, doc, headers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--public-key", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--project", default="msgr-test")
    args = ap.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)
    server.serve_forever()


if __name__ == "__main__":
    main()
