"""Issue 15, class 7: a name is one line, and mail to an unverified address leaves it out.

The review signed up with a multi-line name holding a phishing URL, and the
verification email quoted it verbatim to whoever owned the address.
"""

import importlib

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError

from auth_app.models import User
from email_app.models import EmailSend, EmailTemplate
from platform_app.flows import password_reset_request, user_onboard
from tests.support import api_client

pytestmark = pytest.mark.django_db

PHISHING = "Ada\n\nYour account is locked: unlock it at https://phish.example/unlock"
BAD_NAMES = [
    PHISHING,
    "Ada\rBcc: x",
    "Ada\u2028Line two",
    "\u202eadA",  # right-to-left override
    "Ada\x07",
    "A" * 201,
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_sign_up_refuses_a_name_that_is_not_one_short_line(name):
    response = api_client(None).post(
        "/api/v1/auth/sign-up",
        {"email": "ada@example.com", "password": "a long passphrase 42", "name": name},
        format="json",
    )

    assert response.status_code == 400
    assert "name" in response.json()["errors"]
    assert not User.objects.filter(email="ada@example.com").exists()


@pytest.mark.parametrize("name", BAD_NAMES[:4])
def test_a_profile_update_refuses_it_too(name):
    user = user_onboard(email="ada@example.com", name="Ada")

    response = api_client(user).patch("/api/v1/auth/me", {"name": name}, format="json")

    assert response.status_code == 400
    assert User.objects.get(pk=user.pk).name == "Ada"


def test_the_users_api_refuses_it(admin_user):
    target = user_onboard(email="bob@example.com", name="Bob")
    client = api_client(admin_user)

    created = client.post(
        "/api/v1/users", {"email": "eve@example.com", "name": PHISHING}, format="json"
    )
    changed = client.patch(f"/api/v1/users/{target.pk}", {"name": PHISHING}, format="json")

    assert (created.status_code, changed.status_code) == (400, 400)
    assert not User.objects.filter(email="eve@example.com").exists()
    assert User.objects.get(pk=target.pk).name == "Bob"


def test_the_admin_forms_refuse_it(admin_client):
    target = user_onboard(email="bob@example.com", name="Bob")

    added = admin_client.post(
        "/admin/auth_app/user/add/", {"email": "eve@example.com", "name": PHISHING}
    )
    page = admin_client.get(f"/admin/auth_app/user/{target.pk}/change/")
    form = {
        field: value
        for field, value in page.context["adminform"].form.initial.items()
        if value is not None and not isinstance(value, list)
    }
    changed = admin_client.post(
        f"/admin/auth_app/user/{target.pk}/change/", {**form, "name": PHISHING}
    )

    assert added.status_code == 200 and "one line" in added.content.decode()
    assert changed.status_code == 200 and "one line" in changed.content.decode()
    assert not User.objects.filter(email="eve@example.com").exists()
    assert User.objects.get(pk=target.pk).name == "Bob"


def test_the_create_user_command_refuses_it():
    with pytest.raises(CommandError, match="one line"):
        call_command("create_user", "eve@example.com", "--name", PHISHING)
    assert not User.objects.filter(email="eve@example.com").exists()


def mail_text(send: EmailSend) -> str:
    return " ".join([send.subject, send.text_body, send.html_body, str(send.context)])


def test_the_verification_email_does_not_show_the_name_chosen_at_sign_up():
    response = api_client(None).post(
        "/api/v1/auth/sign-up",
        {
            "email": "victim@example.com",
            "password": "a long passphrase 42",
            "name": "Claim your prize at https://phish.example",
        },
        format="json",
    )

    assert response.status_code == 201
    send = EmailSend.objects.get(to_email="victim@example.com", template__key="verify-email")
    assert "phish.example" not in mail_text(send)
    assert send.text_body.startswith("Hello,\n")


def test_a_reset_email_greets_by_name_only_a_verified_address():
    unverified = user_onboard(email="new@example.com", name="Prize at phish.example")
    verified = user_onboard(email="old@example.com", name="Grace")
    User.objects.filter(pk=verified.pk).update(email_verified=True)

    password_reset_request(email=unverified.email)
    password_reset_request(email=verified.email)

    first = EmailSend.objects.get(to_email="new@example.com", template__key="reset-password")
    second = EmailSend.objects.get(to_email="old@example.com", template__key="reset-password")
    assert "phish.example" not in mail_text(first) and first.text_body.startswith("Hello,\n")
    assert second.text_body.startswith("Hello Grace,\n")


def test_the_greeting_migration_leaves_an_edited_template_alone():
    migration = importlib.import_module("email_app.migrations.0007_security_templates_greeting")
    edited = EmailTemplate.objects.get(key="password-changed")
    EmailTemplate.objects.filter(pk=edited.pk).update(
        text_body="Hi {{ user_name }}, our own words.", version=7
    )
    migration.restore_templates(apps, None)  # back to the shipped versions, and forward again
    migration.update_templates(apps, None)

    edited.refresh_from_db()
    assert (edited.text_body, edited.version) == ("Hi {{ user_name }}, our own words.", 7)
    reset = EmailTemplate.objects.get(key="reset-password")
    assert "{% if user_name %}" in reset.text_body
