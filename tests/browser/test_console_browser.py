"""The operators' console in a browser: trends that lead to their lists, one page per person."""

import json
import re

import pytest
from django.utils import timezone

from audit_app.models import AuditLog
from audit_app.services import audit_record
from auth_app.services import session_create
from permissions_app.models import Role
from permissions_app.services import role_grant
from platform_app.flows import user_onboard
from tests.support import PASSWORD, mfa_set_up, staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ada():
    return user_onboard(email="ada@example.com", password=PASSWORD, name="Ada Lovelace")


def test_the_dashboards_figures_lead_to_their_filtered_lists(page, login, root, ada):
    for event in ("auth.sign_in", "auth.sign_in_failed", "auth.sign_in_failed", "auth.locked_out"):
        audit_record(event_type=event, actor_id=None, user_id=ada.pk)
    kept = staff("kept@example.com")
    mfa_set_up(kept, at=timezone.now())
    login(root.email)

    figures = page.locator("#sv-figures figure")
    assert figures.count() == 5
    assert page.locator("#sv-sign-ins svg title").first.text_content() == (
        "Sign-ins per hour, last 48 hours"
    )
    assert "2 failed sign-ins, 1 lockouts" in page.locator("#sv-sign-ins desc").text_content()
    assert page.locator("#sv-sign-ins .sv-mark").count() == 1

    page.locator("#sv-sign-ins .sv-legend", has_text="failed").click()
    page.wait_for_url(re.compile(r"event_type=auth\.sign_in_failed.*within=2d"))
    events = page.locator("#result_list td.field-event_type").all_inner_texts()
    assert events == ["auth.sign_in_failed", "auth.sign_in_failed"]

    page.goto("/admin/")
    page.locator("#sv-sign-ups a.sv-figure-link").click()
    page.wait_for_url(re.compile(r"/admin/auth_app/user/\?created_at__gte="))
    assert "ada@example.com" in page.inner_text("#result_list")

    page.goto("/admin/")
    staff_mfa = page.locator("#sv-staff-mfa")
    assert staff_mfa.locator("svg title").first.text_content() == (
        "Staff without a second factor, last 30 days"
    )
    assert "1 of 2 staff have no second factor today" in staff_mfa.locator("desc").text_content()
    staff_mfa.locator("a.sv-figure-link").click()
    page.wait_for_url(re.compile(r"/admin/auth_app/user/\?.*mfa=off"))
    missing = page.inner_text("#result_list")
    assert "root@example.com" in missing
    assert "kept@example.com" not in missing and "ada@example.com" not in missing
    page.goto("/admin/")
    page.locator("#sv-staff-mfa .sv-legend", has_text="with MFA").click()
    page.wait_for_url(re.compile(r"/admin/auth_app/user/\?.*mfa=on"))
    assert "kept@example.com" in page.inner_text("#result_list")

    page.goto("/admin/")
    page.locator("#sv-email-funnel .sv-legend", has_text="queued").click()
    page.wait_for_url(re.compile(r"/admin/email_app/emailsend/\?within=30d"))
    assert "ada@example.com" in page.inner_text("#result_list")


def test_a_support_operator_finds_a_person_by_email_and_reads_their_timeline(page, login, ada):
    support = staff(
        "support@example.com",
        "users:read",
        "audit:read",
        "email:read",
        "sessions:read",
        "roles:read",
    )
    session_create(user=ada, ip_address="203.0.113.9")
    for n in range(30):
        audit_record(event_type="user.updated", actor_id=support.pk, user_id=ada.pk, target_id=n)
    login(support.email)

    page.fill("#sv-find-email", "ADA@example.com")
    page.press("#sv-find-email", "Enter")
    page.wait_for_url(f"**/admin/auth_app/user/{ada.pk}/change/")

    timeline = page.locator("#sv-timeline")
    first = timeline.locator("tbody tr").all_inner_texts()
    assert len(first) == 25 and "user.updated" in first[0]
    assert "support@example.com" in first[0]
    timeline.locator("a[rel=next]").click()
    page.wait_for_url(re.compile(r"before="))
    older = page.locator("#sv-timeline tbody tr").all_inner_texts()
    kinds = " ".join(older)
    assert "session started" in kinds and "email " in kinds
    assert "user.created" in kinds
    # The permissions she holds, and which role gives each.
    assert "profile:read" in page.inner_text("#sv-permissions")


def test_a_persons_data_downloads_as_json(page, login, root, ada):
    login(root.email)
    page.goto(f"/admin/auth_app/user/{ada.pk}/change/")

    with page.expect_download() as download:
        page.click("#sv-export-data button")
    path = download.value.path()
    data = json.loads(open(path, encoding="utf-8").read())

    assert download.value.suggested_filename == f"user-{ada.pk}.json"
    assert data["user"]["email"] == "ada@example.com" and "password" not in data["user"]
    assert {e["event_type"] for e in data["audit_events"]} >= {"user.created"}
    assert AuditLog.objects.filter(event_type="user.exported", user_id=ada.pk).exists()


def test_an_auditor_cannot_export_a_persons_data(page, login, ada):
    auditor = staff("reader@example.com", "users:read")
    role_grant(user=auditor, role=Role.objects.get(name="auditor"))
    login(auditor.email)
    page.goto(f"/admin/auth_app/user/{ada.pk}/change/")

    assert page.locator("#sv-export-data").count() == 0
    token = page.input_value("input[name=csrfmiddlewaretoken]")
    status = page.evaluate(
        """([url, token]) => fetch(url, {method: "POST", headers: {"X-CSRFToken": token}})
            .then(r => r.status)""",
        [f"/admin/auth_app/user/{ada.pk}/export-data/", token],
    )
    assert status == 403
    assert not AuditLog.objects.filter(event_type="user.exported").exists()
    # The audit log itself they may export.
    page.goto("/admin/audit_app/auditlog/")
    assert page.get_by_role("link", name="Export CSV").count() == 1
