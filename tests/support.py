"""Helpers the tests of every app share: problems, signed-in clients, users with permissions."""

import io
import json
import time
import urllib.error
import urllib.request
from datetime import datetime

from django.test import Client
from rest_framework.test import APIClient

from auth_app.mfa import totp_enroll_start
from auth_app.models import TwoFactor, User
from auth_app.services import session_create
from auth_app.tests.factories import UserFactory
from permissions_app.services import role_grant
from permissions_app.tests.factories import RoleFactory

PASSWORD = "correct horse battery staple"


class Terminal(io.StringIO):
    """Output that says it is a terminal, where commands draw their progress bars."""

    def isatty(self):
        return True


def assert_problem(response, status: int, code: str) -> dict:
    """The RFC 9457 body of `response`, once its status, media type and code are the ones given."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


def user_with(*permissions: str, role: str | None = None, **fields) -> User:
    """A new user who holds exactly `permissions` (besides the default role's).

    They come with one new role, named `role` when given.
    """
    user = UserFactory(**fields)
    if permissions:
        names = {"name": role} if role else {}
        role_grant(user=user, role=RoleFactory(permissions=list(permissions), **names))
    return user


def staff(email: str, *permissions: str, superuser: bool = False) -> User:
    """Staff who sign in to the admin with PASSWORD; their role is named after the address."""
    return user_with(
        *permissions,
        role=email.partition("@")[0],
        email=email,
        password=PASSWORD,
        is_staff=True,
        is_superuser=superuser,
    )


def mfa_set_up(user: User, *, at: datetime) -> None:
    """Give `user` an authenticator app confirmed at `at` (a past date, for the dashboard)."""
    totp_enroll_start(user=user)
    TwoFactor.objects.filter(user=user).update(confirmed_at=at)


def admin_client_for(user: User) -> Client:
    """A browser-like client with `user` signed in to the admin."""
    client = Client()
    client.force_login(user)
    return client


def api_client(user: User | None) -> APIClient:
    """An API client authenticated as `user` (anonymous for None), without a session."""
    client = APIClient()
    client.force_authenticate(user)
    return client


def bearer_client(user: User) -> APIClient:
    """An API client that sends a real session token of `user`, as an app would."""
    _session, token = session_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def fetch(url: str, *, body: dict | None = None, token: str | None = None, timeout: float = 30):
    """(status, parsed JSON or text) of one request; status 0 when the connection failed."""
    request = urllib.request.Request(  # noqa: S310
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except OSError:
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def wait_until(predicate, *, seconds: float, step: float = 0.2):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
