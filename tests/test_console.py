"""The operators' console: people by name, lists paged by key, streamed exports, query counts."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit_app.models import AuditLog
from audit_app.services import audit_record
from auth_app.models import Session, User
from auth_app.services import session_create
from auth_app.tests.factories import UserFactory
from email_app.models import EmailSend
from email_app.services import email_suppress
from email_app.tests.factories import EmailSendFactory
from permissions_app.models import Role
from permissions_app.services import role_grant
from tests.support import admin_client_for, mfa_set_up, staff

pytestmark = pytest.mark.django_db

AUDIT = "/admin/audit_app/auditlog/"
SENDS = "/admin/email_app/emailsend/"


def queries(client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(captured), response.content.decode()


def people(count: int, start: int = 0):
    return [
        UserFactory(email=f"person{n}@example.com", name=f"Person {n}")
        for n in range(start, start + count)
    ]


def test_audit_rows_show_actors_and_users_by_name_with_one_query_per_page(admin_client, root):
    audit_record(event_type="user.updated", actor_id=root.pk, user_id=people(1)[0].pk)
    few, _ = queries(admin_client, AUDIT)
    for user in people(29, start=1):
        audit_record(event_type="user.updated", actor_id=root.pk, user_id=user.pk)
    audit_record(event_type="audit.pruned", actor_id=None)
    audit_record(event_type="user.deleted", actor_id=root.pk, user_id="01-gone-user")

    count, page = queries(admin_client, AUDIT)

    assert "Person 29 &lt;person29@example.com&gt;" in page
    assert "root@example.com" in page and "system" in page and "deleted user" in page
    assert f">{root.pk}<" not in page  # no bare ids in the cells
    # The same queries whatever the number of rows: no query per row.
    assert count == few


def test_the_audit_list_pages_by_key_without_counting_the_table(admin_client, root):
    first = audit_record(event_type="user.updated", actor_id=root.pk).pk
    for _ in range(150):
        audit_record(event_type="user.updated", actor_id=root.pk)
    newest = AuditLog.objects.order_by("-id")[0].pk

    with CaptureQueriesContext(connection) as captured:
        page = admin_client.get(AUDIT).content.decode()
    assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)
    assert f"/{newest}/change/" in page and 'rel="next"' in page and 'rel="prev"' not in page

    oldest = admin_client.get(f"{AUDIT}?last=1").content.decode()
    assert f"/{first}/change/" in oldest and 'rel="next"' not in oldest and 'rel="prev"' in oldest
    middle = admin_client.get(f"{AUDIT}?before={first + 60}").content.decode()
    assert f"/{first + 59}/change/" in middle and f"/{first + 60}/change/" not in middle
    assert admin_client.get(f"{AUDIT}?before=not-a-number").status_code == 302  # ?e=1
    for past_the_end in (f"?after={newest + 10}", "?before=1", f"?after={newest}"):
        empty = admin_client.get(f"{AUDIT}{past_the_end}")
        assert empty.status_code == 200 and "0 shown" in empty.content.decode()
        assert "« Newest" in empty.content.decode()


def test_searching_the_audit_log_by_email_finds_the_events_of_that_user(admin_client, root):
    ada, bob = people(2)
    audit_record(event_type="user.updated", actor_id=root.pk, user_id=ada.pk)
    audit_record(event_type="role.assigned", actor_id=ada.pk, user_id=bob.pk)
    audit_record(event_type="user.updated", actor_id=root.pk, user_id=bob.pk, target_id="only-bob")

    with CaptureQueriesContext(connection) as captured:
        page = admin_client.get(AUDIT, {"q": "PERSON0@example.com"}).content.decode()

    assert "role.assigned" in page and "only-bob" not in page
    assert not any("LIKE" in q["sql"].upper() for q in captured.captured_queries)


def test_sends_sessions_and_role_grants_name_their_user_with_a_fixed_number_of_queries(
    admin_client, root
):
    auditor = Role.objects.get(name="auditor")
    counts = {}
    for size in (1, 12):
        for user in people(size) if size == 1 else people(12, start=1):
            EmailSendFactory(user=user, to_email=user.email)
            session_create(user=user)
            role_grant(user=user, role=auditor, granted_by=root)
        counts[size] = {
            url: queries(admin_client, url)
            for url in (
                SENDS,
                "/admin/auth_app/session/",
                "/admin/permissions_app/userrole/",
                "/admin/permissions_app/permissioncache/",
            )
        }
    for url, (count, page) in counts[12].items():
        assert "Person 12 &lt;person12@example.com&gt;" in page, url
        assert count == counts[1][url][0], url
    assert "root@example.com" in counts[12]["/admin/permissions_app/userrole/"][1]


def test_the_dashboard_names_people_with_a_fixed_number_of_queries(admin_client, root):
    audit_record(event_type="user.updated", actor_id=root.pk, user_id=people(1)[0].pk)
    few, _ = queries(admin_client, "/admin/")
    for user in people(10, start=1):
        audit_record(event_type="user.updated", actor_id=root.pk, user_id=user.pk)
    count, page = queries(admin_client, "/admin/")
    assert "Person 10 &lt;person10@example.com&gt;" in page
    assert count == few


def test_the_sends_list_finds_a_users_emails_by_their_address_and_has_no_date_scan(
    admin_client,
):
    ada, bob = people(2)
    EmailSendFactory(user=ada, to_email="ada-elsewhere@example.net")
    EmailSendFactory(user=bob, to_email="bob-elsewhere@example.net")

    with CaptureQueriesContext(connection) as captured:
        page = admin_client.get(SENDS, {"q": "Person0@Example.com"}).content.decode()

    assert "ada-elsewhere@" in page and "bob-elsewhere@" not in page
    sql = " ".join(q["sql"].upper() for q in captured.captured_queries)
    assert "LIKE" not in sql and "DISTINCT" not in sql


def test_the_audit_list_exports_the_filtered_rows_as_csv_and_jsonl(admin_client, root):
    ada = people(1)[0]
    audit_record(event_type="user.updated", actor_id=root.pk, user_id=ada.pk)
    audit_record(event_type="role.assigned", actor_id=root.pk, user_id=ada.pk)
    page = admin_client.get(AUDIT, {"event_type": "role.assigned"}).content.decode()
    assert "export/?event_type=role.assigned&amp;format=csv" in page

    filters = {"event_type": "role.assigned", "q": ada.email}
    response = admin_client.get(f"{AUDIT}export/", {**filters, "format": "csv"})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["event_type"] for r in rows} == {"role.assigned"}
    assert {r["user_id"] for r in rows} == {ada.pk}
    assert root.pk in {r["actor_id"] for r in rows}
    assert "row_mac" not in rows[0]

    response = admin_client.get(f"{AUDIT}export/", {"q": ada.email, "format": "jsonl"})
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [line["event_type"] for line in lines][:2] == ["role.assigned", "user.updated"]
    assert {line["user_id"] for line in lines} == {ada.pk}
    bad = admin_client.get(f"{AUDIT}export/", {"format": "xml"})
    assert bad.status_code == 400


def test_exports_need_the_apis_permissions():
    reader = staff("reader@example.com", "audit:read", "email:read")
    client = admin_client_for(reader)
    assert "Export CSV" not in client.get(AUDIT).content.decode()
    assert client.get(f"{AUDIT}export/", {"format": "csv"}).status_code == 403
    assert "Export CSV" in client.get(SENDS).content.decode()

    auditor = staff("auditor@example.com")
    role_grant(user=auditor, role=Role.objects.get(name="auditor"))
    client = admin_client_for(auditor)
    assert client.get(f"{AUDIT}export/", {"format": "csv"}).status_code == 200
    assert client.get(f"{SENDS}export/", {"format": "csv"}).status_code == 403


def test_the_sends_export_streams_no_bodies(admin_client):
    ada = people(1)[0]
    EmailSendFactory(user=ada, to_email=ada.email)
    response = admin_client.get(f"{SENDS}export/", {"format": "jsonl", "q": ada.email})
    lines = [json.loads(x) for x in b"".join(response.streaming_content).splitlines()]
    assert len(lines) == EmailSend.objects.filter(user=ada).count() >= 1
    for line in lines:
        assert line["to_email"] == ada.email and line["user_id"] == ada.pk
        assert not {"text_body", "html_body", "context"} & set(line)


# The dashboard's trends --------------------------------------------------------------------


def test_the_dashboard_draws_its_trends_as_accessible_svg_linked_to_their_lists(admin_client, root):
    ada = people(1)[0]
    for event in ("auth.sign_in", "auth.sign_in", "auth.sign_in_failed", "auth.locked_out"):
        audit_record(event_type=event, actor_id=None, user_id=ada.pk)
    session_create(user=ada)
    soft = EmailSendFactory(user=ada, to_email=ada.email)
    EmailSend.objects.filter(pk=soft.pk).update(status=EmailSend.Status.SOFT_BOUNCED)

    response = admin_client.get("/admin/")
    page = response.content.decode()
    figures = {f["figure"].key: f["figure"] for f in response.context["dashboard"]["figures"]}

    assert set(figures) == {
        "sv-sign-ups",
        "sv-sign-ins",
        "sv-email-funnel",
        "sv-sessions",
        "sv-staff-mfa",
    }
    assert page.count('<svg role="img"') == 5 and "<script" not in page.split("sv-figures")[1]
    assert 'aria-labelledby="sv-sign-ins-title sv-sign-ins-desc"' in page
    sign_ins = figures["sv-sign-ins"]
    assert sign_ins.series[0].values[-1] == 2 and sign_ins.series[1].values[-1] == 1
    assert "2 successful and 1 failed sign-ins, 1 lockouts" in sign_ins.summary
    assert list(sign_ins.marks) == [47] and 'class="sv-mark"' in page
    assert figures["sv-sign-ups"].series[0].values[-1] >= 2  # root and ada, today
    assert sum(figures["sv-sessions"].series[0].values) == Session.objects.count() == 2

    failed = admin_client.get(sign_ins.url).content.decode()
    assert failed.count('class="field-event_type"') == 1 and "auth.sign_in_failed" in failed
    funnel = {series.name: series for series in figures["sv-email-funnel"].series}
    assert "status__exact=bounced" in funnel["bounced"].url
    assert funnel["soft_bounced"].values[-1] == 1 and funnel["bounced"].values[-1] == 0
    assert 'background:#8d5524"></span>failed' in page  # the seventh step has a colour too
    assert admin_client.get(figures["sv-sessions"].url).status_code == 200


def test_the_staff_mfa_trend_counts_staff_without_a_second_factor_day_by_day(admin_client):
    now = timezone.now()
    late = staff("late@example.com")  # joined 10 days ago, an authenticator app 3 days ago
    never = staff("never@example.com")  # joined 5 days ago, no second factor
    UserFactory(email="customer@example.com")  # not staff: in neither series
    User.objects.filter(pk=late.pk).update(created_at=now - timedelta(days=10))
    User.objects.filter(pk=never.pk).update(created_at=now - timedelta(days=5))
    mfa_set_up(late, at=now - timedelta(days=3))

    response = admin_client.get("/admin/")
    figures = {f["figure"].key: f["figure"] for f in response.context["dashboard"]["figures"]}
    figure = figures["sv-staff-mfa"]
    enrolled, without = (series.values for series in figure.series)

    # Today: root (joined today) and `never` have no factor, `late` has one.
    assert (without[-1], enrolled[-1]) == (2, 1)
    assert (without[-4], enrolled[-4]) == (1, 1)  # the day `late` set one up
    assert (without[-5], enrolled[-5]) == (2, 0)  # the day before
    assert (without[-11], enrolled[-11]) == (1, 0)  # the day `late` joined
    assert without[-12] == enrolled[-12] == 0
    assert "2 of 3 staff have no second factor today" in figure.summary
    page = response.content.decode()
    assert 'aria-labelledby="sv-staff-mfa-title sv-staff-mfa-desc"' in page

    missing = admin_client.get(figure.url).content.decode()
    assert "never@example.com" in missing and "root@example.com" in missing
    assert "late@example.com" not in missing and "customer@example.com" not in missing
    assert "late@example.com" in admin_client.get(figure.series[0].url).content.decode()


def test_staff_see_only_the_trends_of_the_lists_they_may_read():
    auditor = staff("auditor@example.com")
    role_grant(user=auditor, role=Role.objects.get(name="auditor"))
    figures = admin_client_for(auditor).get("/admin/").context["dashboard"]["figures"]
    assert [f["figure"].key for f in figures] == ["sv-sign-ins"]


# One page per person -------------------------------------------------------------------------


def change_url(user) -> str:
    return f"/admin/auth_app/user/{user.pk}/change/"


def test_the_header_email_box_leads_to_the_persons_page(admin_client):
    ada = people(1)[0]
    page = admin_client.get("/admin/").content.decode()
    assert 'id="sv-find-person"' in page

    found = admin_client.get("/admin/auth_app/user/find/", {"person": " PERSON0@example.com "})
    assert found.status_code == 302 and found["Location"] == change_url(ada)
    missing = admin_client.get("/admin/auth_app/user/find/", {"person": "nobody@example.com"})
    assert missing["Location"] == "/admin/auth_app/user/?q=nobody%40example.com"


def test_the_persons_page_shows_a_paginated_timeline_of_events_emails_and_sessions(
    admin_client, root
):
    ada = people(1)[0]
    session_create(user=ada)
    EmailSendFactory(user=ada, to_email=ada.email)
    for n in range(30):
        audit_record(event_type="user.updated", actor_id=root.pk, user_id=ada.pk, target_id=n)

    response = admin_client.get(change_url(ada))
    timeline = response.context["timeline"]
    assert len(timeline.entries) == 25 and timeline.older
    assert [e.when for e in timeline.entries] == sorted(
        (e.when for e in timeline.entries), reverse=True
    )
    assert timeline.entries[0].what == "user.updated"
    assert "root@example.com" in response.content.decode().split('id="sv-timeline"')[1]

    older = admin_client.get(change_url(ada), {"before": timeline.older}).context["timeline"]
    kinds = {e.kind for e in older.entries}
    assert {"email", "session", "audit"} <= kinds
    assert older.entries[0].when < timeline.entries[-1].when


def test_the_persons_page_lists_effective_permissions_with_the_role_giving_each(admin_client):
    ada = people(1)[0]
    role_grant(user=ada, role=Role.objects.get(name="auditor"))
    sources = admin_client.get(change_url(ada)).context["permission_sources"]
    assert ("audit:export", "Export the audit log", ["auditor"]) in sources
    assert ("profile:read", "See one's own profile, sessions and email preferences", ["user"]) in [
        tuple(row) for row in sources
    ]


def test_a_persons_data_downloads_as_one_json_file_without_secrets_and_is_audited(
    admin_client, root
):
    ada = people(1)[0]
    _session, token = session_create(user=ada)
    send = EmailSendFactory(user=ada, to_email=ada.email)
    email_suppress(send=send, reason="hard_bounce", provider="postmark", detail="No such mailbox")
    assert "Download this person's data" in admin_client.get(change_url(ada)).content.decode()

    response = admin_client.post(f"/admin/auth_app/user/{ada.pk}/export-data/")

    assert response["Content-Disposition"] == f'attachment; filename="user-{ada.pk}.json"'
    body = response.content.decode()
    data = json.loads(body)
    assert data["user"]["email"] == ada.email and "password" not in data["user"]
    assert len(data["sessions"]) == 1 and "token_hash" not in data["sessions"][0]
    assert data["emails"] and "text_body" not in data["emails"][0]
    assert [r["role__name"] for r in data["roles"]] == ["user"]
    assert [(r["address"], r["detail"]) for r in data["email_suppressions"]] == [
        (ada.email, "No such mailbox")
    ]
    assert any(e["event_type"] == "user.created" for e in data["audit_events"])
    assert token not in body and ada.password not in body
    exported = AuditLog.objects.get(event_type="user.exported", user_id=ada.pk)
    assert exported.actor_id == root.pk


def test_only_holders_of_users_export_may_download_a_persons_data():
    ada = people(1)[0]
    reader = staff("reader@example.com", "users:read", "audit:read", "audit:export")
    client = admin_client_for(reader)
    assert "Download this person" not in client.get(change_url(ada)).content.decode()
    assert client.post(f"/admin/auth_app/user/{ada.pk}/export-data/").status_code == 403
    assert not AuditLog.objects.filter(event_type="user.exported").exists()


def test_a_persons_link_is_never_inside_the_rows_own_link(admin_client, root):
    ada = people(1)[0]
    role_grant(user=ada, role=Role.objects.get(name="auditor"), granted_by=root)
    for url in ("/admin/permissions_app/userrole/", "/admin/permissions_app/permissioncache/"):
        page = admin_client.get(url).content.decode()
        assert "Person 0 &lt;person0@example.com&gt;" in page
        assert '/change/"><a href="/admin/auth_app/user/' not in page, url


def test_a_csv_export_does_not_hand_spreadsheets_a_formula(admin_client):
    ada = people(1)[0]
    audit_record(event_type="user.updated", user_id=ada.pk, user_agent="=HYPERLINK(evil)")
    response = admin_client.get(f"{AUDIT}export/", {"q": ada.email, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert "'=HYPERLINK(evil)" in [row["user_agent"] for row in rows]
    jsonl = admin_client.get(f"{AUDIT}export/", {"q": ada.email, "format": "jsonl"})
    assert b'"user_agent": "=HYPERLINK(evil)"' in b"".join(jsonl.streaming_content)
