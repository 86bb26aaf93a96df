"""Passkeys in a real Chromium with the DevTools virtual authenticator.

The page is served by the live server at http://localhost:<port>, so the relying party ID is
`localhost` and the origin is the live server's; the browser does the WebAuthn ceremony, the
server checks it with py_webauthn.
"""

from datetime import timedelta

import pytest

from audit_app.models import AuditLog
from auth_app import mfa
from auth_app.models import Passkey, Session
from platform_app.flows import user_onboard
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What docs/mfa.md shows an application: JSON options in, the credential's JSON out.
HELPERS = """
window.api = async (path, body, token) => {
  const headers = {"Content-Type": "application/json"};
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch("/api/v1/" + path, {
    method: "POST", headers, body: JSON.stringify(body || {}), credentials: "omit",
  });
  return {status: response.status, body: await response.json().catch(() => null)};
};
window.createPasskey = async (options) => {
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
  return (await navigator.credentials.create({publicKey})).toJSON();
};
window.getPasskey = async (options) => {
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
  return (await navigator.credentials.get({publicKey})).toJSON();
};
"""


@pytest.fixture
def tab(page, live_server, settings):
    settings.SV_WEBAUTHN_RP_ID = "localhost"
    settings.SV_WEBAUTHN_ORIGINS = [live_server.url]
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "mfa": (1000, 10)}
    page.goto("/")
    page.add_script_tag(content=HELPERS)
    return page


@pytest.fixture
def authenticator(tab):
    """A platform authenticator that holds discoverable credentials and verifies its user."""
    cdp = tab.context.new_cdp_session(tab)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


@pytest.fixture
def ada():
    return user_onboard(email="ada@example.com", password=PASSWORD, name="Ada Lovelace")


def api(tab, path, body=None, token=None) -> dict:
    return tab.evaluate("([p, b, t]) => window.api(p, b, t)", [path, body, token])


def sign_in_token(tab, email) -> dict:
    return api(tab, "auth/sign-in", {"email": email, "password": PASSWORD})["body"]


def register(tab, token, name="Laptop") -> dict:
    options = api(tab, "auth/mfa/passkeys/options", token=token)["body"]
    credential = tab.evaluate("(o) => window.createPasskey(o)", options)
    return api(tab, "auth/mfa/passkeys", {"name": name, "credential": credential}, token=token)


def test_registering_a_passkey_then_using_it_as_the_second_factor(tab, authenticator, ada):
    token = sign_in_token(tab, ada.email)["session"]["token"]
    registered = register(tab, token)
    assert registered["status"] == 201, registered
    assert registered["body"]["name"] == "Laptop"
    assert len(registered["body"]["recovery_codes"]) == 10
    assert AuditLog.objects.filter(event_type="mfa.enrolled", user_id=ada.pk).exists()

    step = sign_in_token(tab, ada.email)
    assert step["mfa_required"] and "passkey" in step["methods"]
    challenge = api(tab, "auth/mfa/challenge/passkey", {"mfa_token": step["mfa_token"]})
    assert challenge["status"] == 200, challenge
    options = challenge["body"]
    assertion = tab.evaluate("(o) => window.getPasskey(o)", options)
    verified = api(
        tab,
        "auth/mfa/verify",
        {"mfa_token": step["mfa_token"], "method": "passkey", "credential": assertion},
    )
    assert verified["status"] == 200, verified
    assert Session.objects.filter(user=ada, amr=["pwd", "webauthn"]).exists()
    passkey = Passkey.objects.get(user=ada)
    assert passkey.last_used_at is not None and passkey.sign_count > 0

    # The same assertion again: its challenge is spent.
    replay = api(
        tab,
        "auth/mfa/verify",
        {
            "mfa_token": sign_in_token(tab, ada.email)["mfa_token"],
            "method": "passkey",
            "credential": assertion,
        },
    )
    assert replay["status"] == 400 and replay["body"]["code"] == "passkey_invalid"


def test_passwordless_sign_in_with_a_discoverable_passkey(tab, authenticator, ada):
    register(tab, sign_in_token(tab, ada.email)["session"]["token"])
    options = api(tab, "auth/mfa/passkey-sign-in/options")["body"]
    assert options["userVerification"] == "required"
    assert options.get("allowCredentials", []) == []
    assertion = tab.evaluate("(o) => window.getPasskey(o)", options)
    signed_in = api(tab, "auth/mfa/passkey-sign-in", {"credential": assertion})
    assert signed_in["status"] == 200, signed_in
    assert signed_in["body"]["user"]["email"] == "ada@example.com"
    assert Session.objects.filter(user=ada, amr=["webauthn"]).exists()


def test_a_cloned_authenticator_whose_counter_goes_back_is_refused(tab, authenticator, ada):
    cdp, authenticator_id = authenticator
    register(tab, sign_in_token(tab, ada.email)["session"]["token"])
    for _ in range(2):
        options = api(tab, "auth/mfa/passkey-sign-in/options")["body"]
        assertion = tab.evaluate("(o) => window.getPasskey(o)", options)
        assert api(tab, "auth/mfa/passkey-sign-in", {"credential": assertion})["status"] == 200
    # A copy of the key made before those uses: its counter is behind the server's.
    [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})[
        "credentials"
    ]
    cdp.send(
        "WebAuthn.removeCredential",
        {"authenticatorId": authenticator_id, "credentialId": credential["credentialId"]},
    )
    cdp.send(
        "WebAuthn.addCredential",
        {"authenticatorId": authenticator_id, "credential": {**credential, "signCount": 0}},
    )
    options = api(tab, "auth/mfa/passkey-sign-in/options")["body"]
    assertion = tab.evaluate("(o) => window.getPasskey(o)", options)
    refused = api(tab, "auth/mfa/passkey-sign-in", {"credential": assertion})
    assert refused["status"] == 400 and refused["body"]["code"] == "passkey_cloned"


def test_the_admin_login_with_a_passkey(tab, authenticator, root):
    register(tab, sign_in_token(tab, root.email)["session"]["token"])
    tab.goto("/admin/login/?next=/admin/")
    tab.fill("#id_username", root.email)
    tab.fill("#id_password", PASSWORD)
    tab.click("input[type=submit]")
    tab.click("#use-passkey")
    tab.wait_for_url("**/admin/")
    assert "Staff with MFA" in tab.inner_text("#sv-dashboard")
    assert Session.objects.filter(user=root, amr=["pwd", "webauthn"]).exists()
    assert AuditLog.objects.filter(event_type="auth.sign_in", user_id=root.pk).exists()


def test_removing_a_passkey_needs_a_fresh_authentication(tab, authenticator, ada, monkeypatch):
    token = sign_in_token(tab, ada.email)["session"]["token"]
    passkey_id = register(tab, token)["body"]["id"]
    later = mfa.mfa_now() + timedelta(minutes=11)
    monkeypatch.setattr(mfa, "mfa_now", lambda: later)

    def remove():
        return tab.evaluate(
            """async ([id, token]) => (await fetch("/api/v1/auth/mfa/passkeys/" + id, {
                 method: "DELETE", headers: {Authorization: "Bearer " + token},
                 credentials: "omit"})).status""",
            [passkey_id, token],
        )

    assert remove() == 403
    options = api(tab, "auth/mfa/reauthenticate/options", token=token)["body"]
    assertion = tab.evaluate("(o) => window.getPasskey(o)", options)
    again = api(
        tab,
        "auth/mfa/reauthenticate",
        {"method": "passkey", "credential": assertion},
        token=token,
    )
    assert again["status"] == 200 and "webauthn" in again["body"]["amr"]
    assert remove() == 204
    assert not Passkey.objects.filter(user=ada).exists()
    assert AuditLog.objects.filter(event_type="mfa.disabled", user_id=ada.pk).exists()
