"""The admin in a real browser: operators' everyday work, and what limited staff may not do."""

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from audit_app.models import AuditLog
from audit_app.services import audit_record
from auth_app.models import Session, User
from auth_app.services import session_create
from email_app.models import EmailSend, EmailTemplate
from permissions_app.models import PermissionCache, Role, UserRole
from permissions_app.services import role_grant
from platform_app.flows import user_onboard
from sv_sdk.db.batch import Batch
from tests.support import PASSWORD, mfa_set_up, staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

USERS = "/admin/auth_app/user/"
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"


@pytest.fixture
def ada():
    return user_onboard(email="ada@example.com", password=PASSWORD, name="Ada Lovelace")


def test_a_superuser_creates_a_user_and_onboarding_runs(page, login, root):
    login(root.email)
    page.goto(f"{USERS}add/")
    page.fill("#id_email", "grace@example.com")
    page.fill("#id_name", "Grace Hopper")
    page.fill("#id_password", "a long enough passphrase")
    page.click("input[name=_save]")

    page.get_by_text("was added successfully").wait_for()
    user = User.objects.get(email="grace@example.com")
    assert list(user.user_roles.values_list("role__name", flat=True)) == ["user"]
    assert PermissionCache.objects.get(user=user).roles == ["user"]
    created = AuditLog.objects.get(event_type="user.created", user_id=user.pk)
    assert created.actor_id == root.pk
    # The new user's page shows the queued verification email and the audit trail.
    page.goto(f"{USERS}{user.pk}/change/")
    assert "Confirm your email address" in page.inner_text(".field-recent_emails")
    assert "user.created" in page.inner_text(".field-recent_audit_events")


def test_a_superuser_grants_a_role_from_the_list_and_revokes_it_on_the_user_page(
    page, login, root, ada
):
    auditor = Role.objects.get(name="auditor")
    login(root.email)
    page.goto(USERS)
    page.check(f"input[name=_selected_action][value='{ada.pk}']")
    page.select_option("select[name=action]", "grant_role")
    page.click("button[name=index]")
    page.select_option("#id_role", label="auditor")
    page.fill("#id_expires_at", (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"))
    page.click("input[name=apply]")

    page.get_by_text("Granted auditor to 1 user(s).").wait_for()
    assignment = UserRole.objects.get(user=ada, role=auditor)
    assert assignment.expires_at is not None
    assert "audit:read" in PermissionCache.objects.get(user=ada).permissions

    page.goto(f"{USERS}{ada.pk}/change/")
    row = page.locator("#user_roles-group tr.form-row").filter(
        has=page.locator("select option[selected]", has_text="auditor")
    )
    row.locator("input[name$='-DELETE']").check()
    page.click("input[name=_save]")

    page.get_by_text("was changed successfully").wait_for()
    assert not UserRole.objects.filter(user=ada, role=auditor).exists()
    assert PermissionCache.objects.get(user=ada).roles == ["user"]
    assert AuditLog.objects.filter(event_type="role.revoked", user_id=ada.pk).exists()


def test_a_superuser_revokes_one_session_then_all_of_them(page, login, root, ada):
    first, _ = session_create(user=ada, ip_address="203.0.113.5", user_agent="Phone/1")
    session_create(user=ada, ip_address="203.0.113.6", user_agent="Laptop/1")
    login(root.email)
    page.goto(f"{USERS}{ada.pk}/change/")
    assert "203.0.113.5" in page.inner_text("#sessions-group")

    page.click(f"button[name=session][value='{first.pk}']")
    page.get_by_text("Revoked the session.").wait_for()
    assert list(Session.objects.filter(user=ada).values_list("ip_address", flat=True)) == [
        "203.0.113.6"
    ]
    assert "203.0.113.5" not in page.inner_text("#sessions-group")

    page.click("button[name=session][value=all]")
    page.get_by_text("Revoked 1 session(s)").wait_for()
    assert not Session.objects.filter(user=ada).exists()
    assert AuditLog.objects.filter(event_type="session.revoked", user_id=ada.pk).count() == 2


def test_previewing_an_email_template_shows_it_rendered_with_its_variables(page, login, root):
    login(root.email)
    page.goto("/admin/email_app/emailtemplate/")
    page.get_by_role("link", name="verify-email", exact=True).first.click()

    variables = page.inner_text(".field-variables")
    assert "verify_url" in variables and "expires_hours" in variables
    preview = page.inner_text(".field-preview")
    assert "Confirm your email address" in preview
    assert "[verify_url]" in preview

    # Live: the preview follows the unsaved edit, variables included.
    page.fill("#id_subject", "Hello {{ user_name }}, please confirm {{ team }}")
    page.locator("#sv-preview-subject").filter(has_text="[team]").wait_for()
    assert page.inner_text("#sv-preview-subject") == "Hello [user_name], please confirm [team]"
    assert "team" in page.inner_text("#sv-preview-variables")
    page.fill("#id_subject", "Broken {% if %}")
    page.locator("#sv-preview-error").filter(has_text="syntax error").wait_for()
    assert EmailTemplate.objects.get(key="verify-email", locale="en").subject == (
        "Confirm your email address"
    )


def test_filtering_the_audit_log_by_event_type_and_by_user(page, login, root, ada):
    login(root.email)
    page.goto("/admin/audit_app/auditlog/")
    page.locator("#changelist-filter").get_by_role("link", name="role.assigned", exact=True).click()

    page.wait_for_url(re.compile(r"event_type=role\.assigned"))
    events = page.locator("#result_list td.field-event_type").all_inner_texts()
    assert events and set(events) == {"role.assigned"}

    page.goto(f"{USERS}{ada.pk}/change/")
    page.get_by_role("link", name="All audit events of this user").click()
    page.wait_for_url(re.compile(rf"user_id={ada.pk}"))
    users = page.locator("#result_list td.field-subject").all_inner_texts()
    assert users and set(users) == {"Ada Lovelace <ada@example.com>"}


def test_an_auditor_reads_the_audit_log_but_cannot_manage_users(page, login, ada):
    auditor = staff("auditor@example.com")
    role_grant(user=auditor, role=Role.objects.get(name="auditor"))
    login(auditor.email)

    assert page.locator("#sv-dashboard caption").all_text_contents() == [
        "Sign-ins in the last 24 h"
    ]
    assert page.locator("a[href='/admin/auth_app/user/']").count() == 0
    page.get_by_role("link", name="Audit logs").first.click()
    page.locator("#result_list tbody tr").first.locator("a").first.click()
    assert page.locator("input[name=_save]").count() == 0

    response = page.goto(f"{USERS}{ada.pk}/change/")
    assert response.status == 403


def test_support_staff_revokes_a_session_but_may_not_grant_roles(page, login, ada):
    support = staff("support@example.com", "users:read", "sessions:revoke")
    session, _ = session_create(user=ada, ip_address="203.0.113.7")
    login(support.email)

    page.goto(USERS)
    actions = page.locator("select[name=action] option").all_inner_texts()
    assert "Revoke all sessions of the selected users" in actions
    assert not any("Grant a role" in a or "Ban" in a for a in actions)

    page.goto(f"{USERS}{ada.pk}/change/")
    assert page.locator("input[name=_save]").count() == 0  # the profile is read-only
    assert page.locator("#user_roles-group").count() == 0  # no roles:read
    page.click(f"button[name=session][value='{session.pk}']")
    page.get_by_text("Revoked the session.").wait_for()
    assert not Session.objects.filter(pk=session.pk).exists()

    response = page.goto("/admin/permissions_app/userrole/add/")
    assert response.status == 403
    assert list(ada.user_roles.values_list("role__name", flat=True)) == ["user"]


def test_screenshots_of_the_user_page_and_the_dashboard(page, login, root, ada, tmp_path):
    """Renders both pages; with SV_UPDATE_SCREENSHOTS=1 they replace docs/screenshots/."""
    session_create(user=ada, ip_address="203.0.113.8", user_agent="Mozilla/5.0 (X11; Linux)")
    role_grant(user=ada, role=Role.objects.get(name="auditor"), granted_by=root)
    target = SCREENSHOTS if os.environ.get("SV_UPDATE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    # A day of activity for the trends.
    now = timezone.now()
    backdated = Batch()
    for hours in range(0, 40, 3):
        for event in ["auth.sign_in"] * (hours % 5 + 2) + ["auth.sign_in_failed"] * (
            hours // 3 % 3
        ):
            row = audit_record(event_type=event, actor=None, user=ada, batch=backdated)
            row.occurred_at = now - timedelta(hours=hours)
    backdated.run()
    audit_record(event_type="auth.locked_out", actor=None, user=ada)
    for days in range(0, 20, 2):
        user = user_onboard(email=f"reader{days}@example.com", name=f"Reader {days}")
        User.objects.filter(pk=user.pk).update(created_at=now - timedelta(days=days))
        EmailSend.objects.filter(user=user).update(
            created_at=now - timedelta(days=days),
            status="delivered",
            sent_at=now,
            delivered_at=now,
        )
    # Staff who joined over the month, half of them setting up a second factor days later.
    for days in range(2, 26, 4):
        member = staff(f"operator{days}@example.com")
        User.objects.filter(pk=member.pk).update(created_at=now - timedelta(days=days))
        if days % 8 == 2:
            mfa_set_up(member, at=now - timedelta(days=days - 2))
    login(root.email)

    assert page.locator("#sv-dashboard").is_visible()
    assert page.locator("#sv-figures svg[role=img]").count() == 5
    page.screenshot(path=target / "admin-dashboard.png", full_page=True)
    page.goto(f"{USERS}{ada.pk}/change/")
    assert page.locator(".field-recent_audit_events table").is_visible()
    assert page.locator("#sv-timeline").is_visible() and page.locator("#sv-permissions").count()
    page.screenshot(path=target / "admin-user.png", full_page=True)

    assert (target / "admin-user.png").stat().st_size > 10_000
    assert (target / "admin-dashboard.png").stat().st_size > 10_000
