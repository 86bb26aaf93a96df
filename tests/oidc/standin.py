"""A local stand-in for Google, Microsoft and GitHub, serving their documented endpoints.

Discovery answers the documents recorded in tests/oidc/recorded/ with the provider's hosts
replaced by this server's address. The authorization endpoint signs the user in at once
(who, is set by the test in `claims`) and redirects back with a code; the token endpoint
checks the client's credentials and the PKCE verifier and answers tokens, an ID token
signed with this server's own key for the OpenID Connect providers.
"""

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

RECORDED = Path(__file__).resolve().parent / "recorded"
HOSTS = {
    "google": [
        "https://accounts.google.com",
        "https://oauth2.googleapis.com",
        "https://openidconnect.googleapis.com",
        "https://www.googleapis.com",
    ],
    "ms": ["https://login.microsoftonline.com", "https://graph.microsoft.com"],
}
DOCUMENTS = {
    "google": "google-openid-configuration.json",
    "ms": "microsoft-common-openid-configuration.json",
}
CLIENTS = {"google": ("google-client", "google-secret"), "ms": ("ms-client", "ms-secret")}
CLIENTS["github"] = ("github-client", "github-secret")


class StandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.base = f"http://127.0.0.1:{self.server_address[1]}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "standin", "use": "sig"})
        self.codes: dict[str, dict] = {}
        # What each provider says about the user who signs in (set by the tests).
        self.claims: dict[str, dict] = {}
        self.github = json.loads((RECORDED / "github-endpoints.json").read_text())
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def document(self, name: str) -> dict:
        text = (RECORDED / DOCUMENTS[name]).read_text()
        for host in HOSTS[name]:
            text = text.replace(host, f"{self.base}/{name}")
        return json.loads(text)

    def issuer(self, name: str) -> str:
        issuer = self.document(name)["issuer"]
        return issuer.replace("{tenantid}", self.claims[name].get("tid", ""))


class _Handler(BaseHTTPRequestHandler):
    server: StandIn

    def log_message(self, *args):  # quiet
        pass

    def _json(self, body, status=200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        name = url.path.split("/")[1]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path.endswith("/.well-known/openid-configuration"):
            return self._json(self.server.document(name))
        if url.path.endswith(("/certs", "/keys")):
            return self._json({"keys": [self.server.key.as_dict(private=False)]})
        if url.path.endswith(("/auth", "/authorize")):
            return self._authorize(name, query)
        if name == "github" and url.path.startswith("/github/api/"):
            return self._github_api(url.path.removeprefix("/github/api/"))
        return self._json({"error": "not_found"}, 404)

    def _authorize(self, name, query):
        if (
            query.get("client_id") != CLIENTS[name][0]
            or query.get("code_challenge_method") != "S256"
        ):
            return self._json({"error": "invalid_request"}, 400)
        code = secrets.token_urlsafe(16)
        self.server.codes[code] = {"name": name, **query}
        self.send_response(302)
        back = urlencode({"code": code, "state": query["state"]})
        self.send_header("Location", f"{query['redirect_uri']}?{back}")
        self.end_headers()

    def do_POST(self):
        name = urlsplit(self.path).path.split("/")[1]
        length = int(self.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        client_id, secret = CLIENTS[name]
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            given = base64.b64decode(basic[6:]).decode().split(":", 1)
        else:
            given = [form.get("client_id"), form.get("client_secret")]
        if given != [client_id, secret]:
            return self._json({"error": "invalid_client"}, 401)
        grant = self.server.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if grant is None or challenge.rstrip(b"=").decode() != grant["code_challenge"]:
            return self._json({"error": "invalid_grant"}, 400)
        tokens = {"access_token": secrets.token_urlsafe(16), "token_type": "bearer"}
        if name == "github":
            tokens["scope"] = grant.get("scope", "")
            return self._json(tokens)
        now = int(time.time())
        claims = {
            "iss": self.server.issuer(name),
            "aud": client_id,
            "iat": now,
            "exp": now + 3600,
            "nonce": grant.get("nonce"),
            **self.server.claims[name],
        }
        header = {"alg": "RS256", "kid": "standin"}
        tokens.update(expires_in=3599, id_token=jwt.encode(header, claims, self.server.key))
        return self._json(tokens)

    def _github_api(self, path):
        if not self.headers.get("Authorization", "").lower().startswith(("bearer ", "token ")):
            return self._json({"message": "Requires authentication"}, 401)
        if path == "user":
            return self._json(self.server.github["user"])
        if path == "user/emails":
            return self._json(self.server.github["emails"])
        return self._json({"message": "Not Found"}, 404)
