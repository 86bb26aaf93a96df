"""Linked accounts in the admin: seen on the user's page, unlinked by operators under the rules."""

import re

import pytest

from audit_app.models import AuditLog
from auth_app.models import Account
from auth_app.tests.factories import UserFactory
from tests.support import admin_client_for, user_with

pytestmark = pytest.mark.django_db

ACCOUNTS = "/admin/auth_app/account/"


def operator(*permissions: str, superuser: bool = False):
    user = user_with(*permissions, is_staff=True, is_superuser=superuser)
    return admin_client_for(user), user


def unlink(client, *accounts):
    data = {"action": "unlink_selected", "_selected_action": [a.pk for a in accounts]}
    return re.sub(r"\s+", " ", client.post(ACCOUNTS, data, follow=True).content.decode())


def linked(user, provider="google", **fields) -> Account:
    return Account.objects.create(
        user=user, provider_id=provider, account_id=f"{provider}-{user.pk}", **fields
    )


def test_the_user_page_lists_linked_accounts_without_their_tokens(settings):
    client, _ = operator(superuser=True)
    user = UserFactory()
    linked(user, access_token="secret-access-token", refresh_token="secret-refresh")

    page = client.get(f"/admin/auth_app/user/{user.pk}/change/").content.decode()

    assert f"google-{user.pk}" in page
    assert "Last sign in at" in page or "last sign in" in page.lower()
    assert "secret-access-token" not in page and "secret-refresh" not in page


def test_an_operator_unlinks_an_account_and_it_is_audited():
    client, actor = operator(superuser=True)
    user = UserFactory()
    user.set_password("a password")  # the account is not the last way to sign in
    user.save()
    account = linked(user)

    page = unlink(client, account)

    assert "Unlinked 1 account(s)." in page
    assert not Account.objects.exists()
    event = AuditLog.objects.get(event_type="account.unlinked")
    assert (event.actor_id, event.user_id, event.metadata) == (
        actor.pk,
        user.pk,
        {"provider": "google"},
    )


def test_the_last_credential_is_not_unlinked_from_the_admin_either():
    client, _ = operator(superuser=True)
    user = UserFactory()
    assert not user.has_usable_password()
    account = linked(user)

    page = unlink(client, account)

    assert "last way to sign in" in page
    assert Account.objects.filter(pk=account.pk).exists()
    assert not AuditLog.objects.filter(event_type="account.unlinked").exists()


def test_an_operator_cannot_unlink_an_account_of_someone_they_do_not_outrank():
    client, _ = operator("users:read", "users:write")
    boss = UserFactory(is_superuser=True)
    account = linked(boss)

    page = unlink(client, account)

    assert "Only a superuser can act on a superuser." in page
    assert "Unlinked" not in page
    assert Account.objects.filter(pk=account.pk).exists()


def test_the_dashboard_shows_the_providers_and_their_status(settings):
    settings.SV_OAUTH_PROVIDERS = {
        "google": {"preset": "google", "client_id": "id", "client_secret": "s3cret-value"},
        "corp": {
            "issuer": "https://id.example",
            "client_id": "corp",
            "enabled": False,
            "trusted_for_linking": True,
        },
    }
    client, _ = operator(superuser=True)
    linked(UserFactory())

    page = re.sub(r"\s+", " ", client.get("/admin/").content.decode())

    assert "Google (google): enabled" in page
    assert "corp (corp): disabled, trusted for linking" in page
    assert "s3cret-value" not in page


def test_a_mistyped_provider_setting_fails_the_system_check(settings):
    from auth_app.apps import oauth_providers_check

    settings.SV_OAUTH_PROVIDERS = {"corp": {"isuer": "https://id.example", "client_id": "x"}}
    [error] = oauth_providers_check(None)
    assert "isuer" in error.msg and error.id == "auth_app.E001"
    settings.SV_OAUTH_PROVIDERS = {"corp": {"issuer": "https://id.example", "client_id": "x"}}
    assert oauth_providers_check(None) == []


def test_the_user_page_shows_an_account_that_needs_consent_again():
    client, _ = operator(superuser=True)
    user = UserFactory()
    linked(user, needs_reconsent=True)

    page = client.get(f"{ACCOUNTS}?needs_reconsent__exact=1").content.decode()

    assert f"google-{user.pk}" in page
    assert (
        "Needs reconsent" in client.get(f"/admin/auth_app/user/{user.pk}/change/").content.decode()
    )
