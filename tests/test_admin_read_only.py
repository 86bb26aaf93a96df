"""Every admin page built on ReadOnlyAdminMixin shows rows and refuses to add or edit them."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from audit_app.models import AuditCheckpoint
from auth_app.models import Account
from auth_app.services import session_create
from email_app.models import EmailWebhook
from platform_app.flows import user_onboard
from sv_sdk.admin_mixins import ReadOnlyAdminMixin

pytestmark = pytest.mark.django_db

# What an operator may still delete on those pages: rows they withdraw. Linked accounts are
# unlinked by their audited action (tests/test_oauth_admin.py), never a raw delete.
DELETABLE = {"Verification", "EmailSend", "EmailWebhook"}


def read_only_admins() -> list:
    registered = [
        admin.site.get_model_admin(m) for m in apps.get_models() if admin.site.is_registered(m)
    ]
    return [
        model_admin for model_admin in registered if isinstance(model_admin, ReadOnlyAdminMixin)
    ]


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_read_only_pages_refuse_adding_and_editing_even_to_a_superuser(admin_client, root):
    # A row in every read-only table but the checkpoints (sealed by their own command).
    user_onboard(email="ada@example.com", name="Ada")
    session_create(user=root)
    Account.objects.create(user=root, provider_id="github", account_id="42")
    EmailWebhook.objects.create(provider="postmark", event_id="e-1", event_type="delivered")
    checked = set()

    for model_admin in read_only_admins():
        model = model_admin.model
        assert admin_client.get(url(model, "changelist")).status_code == 200
        assert admin_client.get(url(model, "add")).status_code == 403, model
        row = model.objects.first()
        if row is None:
            continue
        change = url(model, "change", row.pk)
        page = admin_client.get(change)
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode(), model
        assert admin_client.post(change, {}).status_code == 403, model
        deleting = admin_client.get(url(model, "delete", row.pk)).status_code
        assert deleting == (200 if model.__name__ in DELETABLE else 403), model
        checked.add(model.__name__)

    assert checked == {
        "Account",
        "AuditLog",
        "EmailSend",
        "EmailWebhook",
        "PermissionCache",
        "Session",
        "Verification",
    }
    assert AuditCheckpoint in {model_admin.model for model_admin in read_only_admins()}
