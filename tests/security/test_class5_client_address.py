"""Issue 15, class 5: the client's address behind a reverse proxy.

Behind a proxy every request's TCP peer is the proxy; without a trusted-proxy setting six
wrong passwords from anyone locked the real user out everywhere. SV_TRUSTED_PROXIES names
the proxies whose X-Forwarded-For is believed, read right to left through trusted hops only.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from audit_app.models import AuditLog
from auth_app.models import Session
from platform_app.flows import user_onboard
from sv_sdk.net import client_ip

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
PROXY = "10.0.0.2"


@pytest.fixture
def behind_proxy(settings):
    settings.SV_TRUSTED_PROXIES = ["10.0.0.0/8", "fd00::/8"]
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (100, 10)}


@pytest.fixture
def alice():
    return user_onboard(email="alice@sec.test", password=PASSWORD, name="Alice")


def through_proxy(client_address: str, **extra) -> APIClient:
    """An API client whose requests reach the app from the proxy, naming `client_address`."""
    return APIClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{client_address}, 10.0.0.9", **extra)


def sign_in(client, email, password):
    return client.post(
        "/api/v1/auth/sign-in", {"email": email, "password": password}, format="json"
    )


def ip_of(remote_addr: str, forwarded_for: str | None = None) -> str | None:
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client_ip(RequestFactory().get("/", **extra))


# The one function


def test_class5_without_trusted_proxies_x_forwarded_for_is_ignored(settings):
    settings.SV_TRUSTED_PROXIES = []
    assert ip_of("203.0.113.5", "198.51.100.1") == "203.0.113.5"


@pytest.mark.parametrize(
    ("remote_addr", "forwarded_for", "expected"),
    [
        # The nearest untrusted hop is the client; what it wrote on the left is not believed.
        ("10.0.0.2", "198.51.100.1, 203.0.113.5", "203.0.113.5"),
        ("10.0.0.2", "203.0.113.5, 10.1.1.1, 10.2.2.2", "203.0.113.5"),
        ("10.0.0.2", "203.0.113.5", "203.0.113.5"),
        # A peer that is not a trusted proxy is the client, whatever it claims.
        ("198.51.100.9", "203.0.113.5", "198.51.100.9"),
        # No header, or only trusted hops: the farthest trusted hop is all there is.
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "10.3.3.3", "10.3.3.3"),
        # Garbage stops the walk at the last hop a trusted proxy vouched for.
        ("10.0.0.2", "203.0.113.5, not-an-ip", "10.0.0.2"),
        ("10.0.0.2", "unknown, 10.4.4.4", "10.4.4.4"),
        # Ports, brackets, IPv6 and IPv4-mapped addresses.
        ("10.0.0.2", "203.0.113.5:51234", "203.0.113.5"),
        ("10.0.0.2", "[2001:db8::7]:443", "2001:db8::7"),
        ("fd00::1", "2001:db8::8", "2001:db8::8"),
        ("::ffff:10.0.0.2", "203.0.113.6", "203.0.113.6"),
        ("not-an-ip", "203.0.113.5", None),
    ],
)
def test_class5_x_forwarded_for_is_read_right_to_left_through_trusted_hops_only(
    settings, remote_addr, forwarded_for, expected
):
    settings.SV_TRUSTED_PROXIES = ["10.0.0.0/8", "fd00::/8"]
    assert ip_of(remote_addr, forwarded_for) == expected


# Lockouts and rate limits


def test_class5_failures_of_one_client_behind_the_proxy_do_not_lock_out_another(
    settings, behind_proxy, alice
):
    attacker = through_proxy("203.0.113.66")
    for _ in range(settings.SV_LOCKOUT_THRESHOLD + 1):
        assert sign_in(attacker, alice.email, "wrong password!").status_code in (401, 429)
    assert sign_in(attacker, alice.email, PASSWORD).status_code == 429

    # Alice, behind the same proxy, signs in.
    assert sign_in(through_proxy("198.51.100.23"), alice.email, PASSWORD).status_code == 200


def test_class5_a_forged_x_forwarded_for_does_not_escape_a_lockout(settings, alice):
    settings.SV_TRUSTED_PROXIES = []
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (100, 10)}
    for n in range(settings.SV_LOCKOUT_THRESHOLD):
        client = APIClient(REMOTE_ADDR="203.0.113.70", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        sign_in(client, alice.email, "wrong password!")

    forged = APIClient(REMOTE_ADDR="203.0.113.70", HTTP_X_FORWARDED_FOR="198.51.100.200")
    assert sign_in(forged, alice.email, PASSWORD).status_code == 429


def test_class5_the_per_ip_rate_limit_counts_each_client_behind_the_proxy(settings, alice):
    settings.SV_TRUSTED_PROXIES = ["10.0.0.0/8"]
    first = through_proxy("203.0.113.80")
    for _ in range(3):
        sign_in(first, "nobody@sec.test", "wrong password!")
    assert sign_in(first, alice.email, PASSWORD).status_code == 429

    assert sign_in(through_proxy("203.0.113.81"), alice.email, PASSWORD).status_code == 200


# Audit rows and sessions


def test_class5_audit_rows_and_api_sessions_record_the_client_not_the_proxy(behind_proxy, alice):
    sign_in(through_proxy("203.0.113.90"), alice.email, "wrong password!")
    response = sign_in(through_proxy("203.0.113.91"), alice.email, PASSWORD)
    assert response.status_code == 200

    failed = AuditLog.objects.get(event_type="auth.sign_in_failed")
    signed_in = AuditLog.objects.get(event_type="auth.sign_in")
    assert failed.ip_address == "203.0.113.90"
    assert signed_in.ip_address == "203.0.113.91"
    assert Session.objects.get(user=alice).ip_address == "203.0.113.91"


def test_class5_admin_logins_record_and_lock_by_the_client_behind_the_proxy(settings, behind_proxy):
    root = user_onboard(email="root@sec.test", password=PASSWORD, is_superuser=True)

    def login(address: str, password: str):
        client = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=address)
        response = client.post(
            "/admin/login/", {"username": root.email, "password": password, "next": "/admin/"}
        )
        return response

    for _ in range(settings.SV_LOCKOUT_THRESHOLD):
        login("203.0.113.100", "wrong password")
    locked = login("203.0.113.100", PASSWORD)
    assert locked.status_code == 200 and b"Too many failed sign-ins" in locked.content

    assert login("198.51.100.101", PASSWORD).status_code == 302
    event = AuditLog.objects.get(event_type="auth.sign_in", user_id=root.pk)
    assert event.ip_address == "198.51.100.101"
    assert Session.objects.get(user=root).ip_address == "198.51.100.101"
    locked_out = AuditLog.objects.get(event_type="auth.locked_out")
    assert locked_out.ip_address == "203.0.113.100"


# X-Forwarded-Proto and the production settings


def test_class5_x_forwarded_proto_counts_only_from_a_trusted_proxy(settings):
    settings.SV_TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True

    direct = Client(REMOTE_ADDR="203.0.113.110").get("/", HTTP_X_FORWARDED_PROTO="https")
    proxied = Client(REMOTE_ADDR=PROXY).get("/", HTTP_X_FORWARDED_PROTO="https")

    assert direct.status_code == 301 and direct["Location"].startswith("https://")
    assert proxied.status_code == 200


ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "SECRET_KEY": "class5-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DATABASE_URL": "postgres://app@db.example.com/sv_sdk",
    "SV_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
}


def production_setting(name: str, **environ) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "sv_sdk.settings.production",
        **PRODUCTION_ENV,
        **environ,
    }
    code = (
        f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    )
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_class5_production_believes_x_forwarded_proto_only_with_a_trusted_proxy():
    without = production_setting("SECURE_PROXY_SSL_HEADER")
    with_proxy = production_setting(
        "SECURE_PROXY_SSL_HEADER", SV_TRUSTED_PROXIES="10.0.0.0/8, 192.0.2.1"
    )

    assert without.returncode == 0, without.stderr
    assert without.stdout.strip() == "None"
    assert with_proxy.returncode == 0, with_proxy.stderr
    assert with_proxy.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_class5_a_malformed_trusted_proxy_entry_stops_the_process_at_start():
    result = production_setting("SV_TRUSTED_PROXIES", SV_TRUSTED_PROXIES="10.0.0.0/8,10.0.0/33")

    assert result.returncode != 0
    assert "SV_TRUSTED_PROXIES: '10.0.0/33' is not an IP address or CIDR block" in result.stderr
