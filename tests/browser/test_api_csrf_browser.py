"""A cookie-based front end in a real browser: sign in, get the CSRF token from the API, use it."""

import pytest

from auth_app.models import User
from platform_app.flows import user_onboard

from .conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs in the page, as a front end's own script would: same-origin fetch with cookies.
CALL = """async ([method, path, body, csrf]) => {
    const headers = {"Content-Type": "application/json"};
    if (csrf) headers["X-CSRFToken"] = csrf;
    const response = await fetch(path, {
        method, headers, credentials: "same-origin",
        body: body === null ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return {status: response.status, body: text ? JSON.parse(text) : null};
}"""


def call(page, method, path, body=None, csrf=None):
    return page.evaluate(CALL, [method, path, body, csrf])


def test_a_page_signed_in_by_cookie_needs_the_csrf_token_the_api_hands_out(page):
    user_onboard(email="ada@example.com", password=PASSWORD, name="Ada")
    page.goto("/")

    signed_in = call(
        page, "POST", "/api/v1/auth/sign-in", {"email": "ada@example.com", "password": PASSWORD}
    )
    assert signed_in["status"] == 200
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["sv_session"]["httpOnly"] and "csrftoken" in cookies

    # Without the token, the cookie alone is refused and nothing changes.
    refused = call(page, "PATCH", "/api/v1/auth/me", {"name": "Mallory"})
    assert refused["status"] == 403 and refused["body"]["code"] == "permission_denied"
    assert User.objects.get(email="ada@example.com").name == "Ada"

    # The API hands the token out (body and cookie), and with it the same request works.
    token = call(page, "GET", "/api/v1/auth/csrf")["body"]["csrf_token"]
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}["csrftoken"]
    assert token and cookie
    accepted = call(page, "PATCH", "/api/v1/auth/me", {"name": "Ada L."}, csrf=token)
    assert accepted["status"] == 200 and accepted["body"]["name"] == "Ada L."

    # The cookie's value, as a front end reads it from document.cookie, works as well.
    from_cookie = page.evaluate(
        "() => document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1]"
    )
    assert call(page, "POST", "/api/v1/auth/sign-out", None, csrf=from_cookie)["status"] == 204
