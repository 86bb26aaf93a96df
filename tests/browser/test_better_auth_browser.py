"""A front end on another origin uses better-auth's official client, with credentials, in
headless Chromium against sv_sdk: the cookie rides on CORS, and set-auth-token is readable."""

import functools
import http.server
import shutil
import subprocess
import threading

import pytest

from auth_app.models import User
from reliability.servers import free_port
from tests.better_auth import HERE as CLIENT_DIR
from tests.better_auth import node_missing

from .conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>front end</title>
<link rel="icon" href="data:,">
<!-- What a bundler provides: the client reads process.env for its defaults. -->
<script>globalThis.process = {{ env: {{}} }};</script>
<script type="importmap">{import_map}</script>
<script type="module">
  import {{ createAuthClient }} from "better-auth/client";
  window.tokens = [];
  window.authClient = createAuthClient({{
    baseURL: "{server}",
    fetchOptions: {{
      onSuccess(context) {{
        const token = context.response.headers.get("set-auth-token");
        if (token) window.tokens.push(token);
      }},
    }},
  }});
  document.title = "ready";
</script>
"""


class _FrontEnd(http.server.SimpleHTTPRequestHandler):
    """The front end's origin: its page at /, the client's modules from node_modules."""

    extensions_map = {".js": "text/javascript", ".mjs": "text/javascript", "": "text/plain"}
    page = b""

    def do_GET(self):
        if self.path != "/":
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.page)
        return None

    def log_message(self, *args):
        pass


@pytest.fixture
def front_end(live_server, settings):
    """The front end's origin (same site as the server, another port), trusted by sv_sdk."""
    missing = node_missing()
    if missing:
        pytest.skip(missing)
    import_map = subprocess.run(  # noqa: S603 (our own script)
        [shutil.which("node"), "importmap.mjs"],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    origin = f"http://localhost:{free_port()}"
    handler = type(
        "FrontEnd",
        (_FrontEnd,),
        {"page": PAGE.format(import_map=import_map, server=live_server.url).encode()},
    )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", int(origin.rsplit(":", 1)[1])),
        functools.partial(handler, directory=str(CLIENT_DIR)),
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SV_TRUSTED_ORIGINS = [origin]
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_up": (1000, 10)}
    yield origin
    server.shutdown()
    server.server_close()


def test_a_front_end_on_another_origin_signs_in_with_the_official_client(
    chromium, live_server, front_end
):
    assert live_server.url.startswith("http://localhost:") and front_end != live_server.url
    context = chromium.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(front_end)
    try:
        page.wait_for_function("document.title === 'ready'")
    except Exception:
        raise AssertionError(errors) from None

    def client(script: str, arg=None):
        return page.evaluate(f"async (arg) => {{ const c = window.authClient; {script} }}", arg)

    signed_up = client(
        "return await c.signUp.email(arg);",
        {"email": "ada@example.com", "password": PASSWORD, "name": "Ada"},
    )
    assert signed_up["error"] is None, signed_up
    # The session cookie belongs to sv_sdk's origin, out of the page's reach.
    cookies = {c["name"]: c for c in context.cookies(live_server.url)}
    assert cookies["better-auth.session_token"]["httpOnly"]
    assert "better-auth" not in page.evaluate("document.cookie")
    # A bearer front end can read the token: the header is exposed to this origin.
    assert page.evaluate("window.tokens.length") == 1

    # The cookie rides on the cross-origin calls (credentials: "include").
    session = client("return (await c.getSession()).data;")
    assert session["user"]["email"] == "ada@example.com"
    updated = client("return await c.updateUser({name: 'Ada Lovelace'});")
    assert updated["error"] is None, updated
    assert User.objects.get(email="ada@example.com").name == "Ada Lovelace"
    assert len(client("return (await c.listSessions()).data;")) == 1

    assert client("return (await c.signOut()).data;") == {"success": True}
    assert client("return (await c.getSession()).data;") is None
    context.close()


def test_an_untrusted_origin_cannot_use_the_session(chromium, live_server, front_end, settings):
    context = chromium.new_context()
    page = context.new_page()
    page.goto(front_end)
    page.wait_for_function("document.title === 'ready'")
    signed_up = page.evaluate(
        "async (arg) => await window.authClient.signUp.email(arg)",
        {"email": "bob@example.com", "password": PASSWORD, "name": "Bob"},
    )
    assert signed_up["error"] is None, signed_up
    settings.SV_TRUSTED_ORIGINS = ["http://elsewhere.example"]

    result = page.evaluate(
        """async () => {
            try { return await window.authClient.updateUser({name: "Mallory"}); }
            catch (error) { return {thrown: String(error)}; }
        }"""
    )

    # No CORS grant: the browser does not even send the write, and nothing changed.
    assert "Failed to fetch" in result["thrown"]
    assert User.objects.get(email="bob@example.com").name == "Bob"
    context.close()
