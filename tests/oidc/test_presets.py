"""The Google, Microsoft and GitHub presets: recorded documents served by a local stand-in."""

import json

import pytest

from auth_app.models import Account, User
from auth_app.oauth import PRESETS

from .conftest import APP, app_path
from .standin import CLIENTS, RECORDED, StandIn

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def standin():
    server = StandIn()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def presets(standin, settings):
    settings.SV_PUBLIC_URL = APP
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (1000, 10)}
    settings.SV_OAUTH_PROVIDERS = {
        "google": {
            "preset": "google",
            "issuer": f"{standin.base}/google",
            "client_id": CLIENTS["google"][0],
            "client_secret": CLIENTS["google"][1],
        },
        "microsoft": {
            "preset": "microsoft",
            "issuer": f"{standin.base}/ms/common/v2.0",
            "client_id": CLIENTS["ms"][0],
            "client_secret": CLIENTS["ms"][1],
        },
        "github": {
            "preset": "github",
            "authorization_endpoint": f"{standin.base}/github/login/oauth/authorize",
            "token_endpoint": f"{standin.base}/github/login/oauth/access_token",
            "api_url": f"{standin.base}/github/api/",
            "client_id": CLIENTS["github"][0],
            "client_secret": CLIENTS["github"][1],
        },
    }
    return standin


def round_trip(app, provider_id):
    import requests

    started = app.post(f"/api/v1/auth/oauth/{provider_id}/authorize", {}, format="json")
    assert started.status_code == 200, started.content
    back = requests.get(started.json()["url"], allow_redirects=False, timeout=5)
    assert back.status_code == 302, back.text
    return app.get(app_path(back.headers["Location"]))


def test_the_presets_use_the_documented_addresses():
    google = json.loads((RECORDED / "google-openid-configuration.json").read_text())
    github = json.loads((RECORDED / "github-endpoints.json").read_text())
    assert PRESETS["google"]["issuer"] == google["issuer"]
    assert set(PRESETS["google"]["scopes"]) <= set(google["scopes_supported"])
    for key in ("authorization_endpoint", "token_endpoint", "api_url"):
        assert PRESETS["github"][key] == github[key]


def test_google_signs_in_with_a_verified_email(presets, app):
    presets.claims["google"] = {
        "sub": "110169484474386276334",
        "email": "grace@gmail.example",
        "email_verified": True,
        "name": "Grace",
    }
    response = round_trip(app, "google")
    assert response["Location"] == f"{APP}/"
    account = Account.objects.get(provider_id="google")
    assert account.account_id == "110169484474386276334"
    assert account.user.email_verified


def test_google_with_an_unverified_email_creates_nothing(presets, app):
    presets.claims["google"] = {"sub": "1", "email": "x@example.com", "email_verified": False}
    response = round_trip(app, "google")
    assert response["Location"].endswith("?error=email_unverified")
    assert not User.objects.exists()


def test_github_takes_the_primary_verified_email_from_the_emails_api(presets, app):
    response = round_trip(app, "github")
    assert response["Location"] == f"{APP}/"
    account = Account.objects.get(provider_id="github")
    assert account.account_id == "583231"
    assert account.user.email == "octocat@github.com"
    assert account.user.name == "The Octocat"


def test_microsoft_accepts_the_issuer_of_the_users_own_tenant(presets, app):
    presets.claims["ms"] = {
        "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        "tid": "9188040d-6c67-4c5b-b112-36a304b66dad",
        "email": "megan@contoso.example",
        "xms_edov": True,
        "name": "Megan",
    }
    response = round_trip(app, "microsoft")
    assert response["Location"] == f"{APP}/"
    assert Account.objects.get(provider_id="microsoft").user.email == "megan@contoso.example"


def test_microsoft_refuses_a_token_whose_issuer_is_not_its_tenant(presets, app, monkeypatch):
    presets.claims["ms"] = {
        "sub": "s",
        "tid": "tenant-a",
        "email": "m@example.com",
        "xms_edov": True,
    }
    # The token says tenant-a, the issuer names tenant-b.
    monkeypatch.setattr(type(presets), "issuer", lambda self, name: f"{self.base}/ms/tenant-b/v2.0")
    response = round_trip(app, "microsoft")
    assert response["Location"].endswith("?error=invalid_id_token")
    assert not User.objects.exists()


def test_microsoft_email_without_domain_verification_is_not_trusted(presets, app):
    presets.claims["ms"] = {"sub": "s2", "tid": "t", "email": "any@example.com"}
    response = round_trip(app, "microsoft")
    assert response["Location"].endswith("?error=email_unverified")
