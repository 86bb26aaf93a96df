"""The admin as the operators' console, through Django's test client."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit_app.models import AuditLog
from auth_app.models import Session, User
from auth_app.services import session_create, user_ban
from email_app.models import EmailSend
from permissions_app.models import PermissionCache, Role, UserRole
from permissions_app.services import role_create, role_grant
from platform_app.flows import user_onboard
from tests.support import PASSWORD, admin_client_for, staff

pytestmark = pytest.mark.django_db

USERS = "/admin/auth_app/user/"


@pytest.fixture
def ada():
    return user_onboard(email="ada@example.com", password=PASSWORD, name="Ada")


def change_url(user: User) -> str:
    return f"{USERS}{user.pk}/change/"


def revoke_url(user: User) -> str:
    return f"{USERS}{user.pk}/revoke-sessions/"


def action(client: Client, name: str, users, **extra):
    data = {"action": name, "_selected_action": [u.pk for u in users], **extra}
    return client.post(USERS, data, follow=True)


def page_text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# Creating, changing and deleting users -------------------------------------------------------


def test_creating_a_user_in_the_admin_onboards_them(admin_client, root):
    response = admin_client.post(
        f"{USERS}add/",
        {"email": "new@example.com", "name": "New", "password": PASSWORD, "is_staff": "on"},
    )

    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    assert user.is_staff and user.check_password(PASSWORD)
    assert list(user.user_roles.values_list("role__name", flat=True)) == ["user"]
    assert PermissionCache.objects.get(user=user).roles == ["user"]
    created = AuditLog.objects.get(event_type="user.created", user_id=user.pk)
    assert created.actor_id == root.pk
    assert EmailSend.objects.filter(user=user, template__key="verify-email").exists()


def test_only_a_superuser_can_create_a_superuser():
    manager = staff("manager@example.com", "users:read", "users:write")
    client = admin_client_for(manager)

    assert "is_superuser" not in page_text(client.get(f"{USERS}add/"))
    response = client.post(
        f"{USERS}add/", {"email": "sneaky@example.com", "password": "", "is_superuser": "on"}
    )

    assert response.status_code == 302
    created = User.objects.get(email="sneaky@example.com")
    assert not created.is_superuser
    assert PermissionCache.objects.get(user=created).permissions != ["*"]


def test_adding_a_user_whose_email_is_taken_is_a_form_error(admin_client, ada):
    response = admin_client.post(f"{USERS}add/", {"email": "ADA@example.com", "password": ""})

    assert response.status_code == 200
    assert "already exists" in page_text(response)
    assert User.objects.with_email("ada@example.com").count() == 1


def test_changing_a_user_is_audited_and_deactivating_ends_their_sessions(admin_client, root, ada):
    session_create(user=ada)
    page = admin_client.get(change_url(ada))
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update(email=ada.email, name="Ada L.", email_verified="", is_active="")
    data = {k: v for k, v in data.items() if v not in ("", False)}
    data.update({f"{p}-TOTAL_FORMS": "0" for p in _inline_prefixes(page)})
    data.update({f"{p}-INITIAL_FORMS": "0" for p in _inline_prefixes(page)})

    response = admin_client.post(change_url(ada), data)

    assert response.status_code == 302, page_text(response)[:3000]
    ada.refresh_from_db()
    assert ada.name == "Ada L." and not ada.is_active
    assert not Session.objects.filter(user=ada).exists()
    updated = AuditLog.objects.get(event_type="user.updated", user_id=ada.pk)
    assert updated.actor_id == root.pk
    assert updated.metadata["fields"] == ["is_active", "name"]
    # The admin's own log entry is in the audit trail too.
    change = AuditLog.objects.get(event_type="admin.action", user_id=ada.pk)
    assert change.actor_id == root.pk and change.metadata["action"] == "changed"


def _inline_prefixes(page) -> list[str]:
    return [formset.formset.prefix for formset in page.context["inline_admin_formsets"]]


def test_deleting_a_user_offboards_them_and_keeps_the_trail(admin_client, root, ada):
    response = admin_client.post(f"{change_url(ada)[:-7]}delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not User.objects.filter(pk=ada.pk).exists()
    deleted = AuditLog.objects.get(event_type="user.deleted", user_id=ada.pk)
    assert deleted.actor_id == root.pk and deleted.metadata["roles"] == ["user"]
    assert AuditLog.objects.filter(event_type="user.created", user_id=ada.pk).exists()


# The user page --------------------------------------------------------------------------------


def test_user_page_shows_sessions_audit_events_and_emails_without_secrets(admin_client, ada):
    session_create(user=ada, ip_address="203.0.113.9", user_agent="Firefox/128")

    text = page_text(admin_client.get(change_url(ada)))

    assert "203.0.113.9" in text and "Firefox/128" in text
    assert "1 active session" in text and "Revoke all sessions" in text
    assert "user.created" in text
    assert "Confirm your email address" in text and "queued" in text
    assert f"/admin/audit_app/auditlog/?user_id={ada.pk}" in text
    assert f"/admin/email_app/emailsend/?user__exact={ada.pk}" in text
    assert ada.password not in text
    assert "Not banned" in text


def test_the_user_pages_filter_links_list_only_that_users_rows(admin_client, ada):
    other = user_onboard(email="bob@example.com")

    audit = admin_client.get(f"/admin/audit_app/auditlog/?user_id={ada.pk}")
    emails = admin_client.get(f"/admin/email_app/emailsend/?user__exact={ada.pk}")

    assert audit.status_code == 200 and emails.status_code == 200
    audit_rows = list(audit.context["cl"].result_list)
    assert audit_rows and {row.user_id for row in audit_rows} == {ada.pk}
    email_rows = list(emails.context["cl"].result_list)
    assert [row.to_email for row in email_rows] == [ada.email]
    assert other.email not in page_text(emails)


def test_linked_accounts_are_listed_without_their_tokens(admin_client, ada):
    ada.accounts.create(
        provider_id="github", account_id="4242", access_token="gho_secret_access_token"
    )

    text = page_text(admin_client.get(change_url(ada)))

    assert "github" in text and "4242" in text
    assert "gho_secret_access_token" not in text


# Sessions -------------------------------------------------------------------------------------


def test_revoking_one_session_from_the_user_page_ends_only_that_one(admin_client, root, ada):
    first, _ = session_create(user=ada)
    second, _ = session_create(user=ada)

    response = admin_client.post(revoke_url(ada), {"session": first.pk}, follow=True)

    assert "Revoked the session." in page_text(response)
    assert list(Session.objects.filter(user=ada).values_list("pk", flat=True)) == [second.pk]
    revoked = AuditLog.objects.get(event_type="session.revoked", target_id=first.pk)
    assert revoked.actor_id == root.pk and revoked.metadata["reason"] == "admin"


def test_revoke_all_sessions_from_the_user_page_and_the_list(admin_client, ada):
    bob = user_onboard(email="bob@example.com")
    for user in (ada, ada, bob):
        session_create(user=user)

    admin_client.post(revoke_url(ada), {"session": "all"})
    assert not Session.objects.filter(user=ada).exists()

    response = action(admin_client, "revoke_all_sessions", [bob])
    assert "Revoked 1 session(s)." in page_text(response)
    assert not Session.objects.filter(user=bob).exists()


def test_revoking_sessions_needs_a_post(admin_client, ada):
    session_create(user=ada)

    assert admin_client.get(revoke_url(ada)).status_code == 405
    assert Session.objects.filter(user=ada).exists()


# Roles ----------------------------------------------------------------------------------------


def test_grant_role_asks_for_the_role_then_grants_it_with_an_expiry(admin_client, root, ada):
    role_create(name="support", permissions=["users:read", "sessions:revoke"])
    expires = (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%d %H:%M")

    form_page = action(admin_client, "grant_role", [ada])
    assert "Grant a role" in page_text(form_page)
    support = Role.objects.get(name="support")
    response = action(
        admin_client, "grant_role", [ada], apply="Grant", role=support.pk, expires_at=expires
    )

    assert "Granted support to 1 user(s)." in page_text(response)
    assignment = UserRole.objects.get(user=ada, role=support)
    assert assignment.expires_at is not None and assignment.granted_by == root
    assert PermissionCache.objects.get(user=ada).roles == ["support", "user"]
    assert AuditLog.objects.filter(event_type="role.assigned", target_id=support.pk).exists()


def test_grant_role_refuses_an_expiry_in_the_past(admin_client, ada):
    user_role = Role.objects.get(name="auditor")

    response = action(
        admin_client,
        "grant_role",
        [ada],
        apply="Grant",
        role=user_role.pk,
        expires_at="2001-01-01 00:00",
    )

    assert "The expiry must be in the future." in page_text(response)
    assert not UserRole.objects.filter(user=ada, role=user_role).exists()


def test_grant_role_offers_only_roles_whose_permissions_the_granter_holds(ada):
    granter = staff("granter@example.com", "users:read", "roles:assign", "audit:read")
    client = admin_client_for(granter)

    text = page_text(action(client, "grant_role", [ada]))
    assert ">auditor<" not in text  # auditor holds audit:export, which granter does not
    assert ">admin<" not in text
    admin_role = Role.objects.get(name="admin")
    action(client, "grant_role", [ada], apply="Grant", role=admin_role.pk)

    assert not UserRole.objects.filter(user=ada, role=admin_role).exists()


# Ban and verification -------------------------------------------------------------------------


def test_banning_ends_sessions_and_keeps_the_user_out_of_the_admin(admin_client, root):
    mallory = staff("mallory@example.com", superuser=True)
    session_create(user=mallory)

    form_page = action(admin_client, "ban_users", [mallory])
    assert "Until further notice" in page_text(form_page)
    response = action(admin_client, "ban_users", [mallory], apply="Ban", duration="7d")

    assert "Banned 1 user(s)." in page_text(response)
    mallory.refresh_from_db()
    assert mallory.banned_until > timezone.now() + timedelta(days=6)
    assert not Session.objects.filter(user=mallory).exists()
    audit = AuditLog.objects.get(event_type="user.updated", user_id=mallory.pk)
    assert audit.metadata["fields"] == ["banned_until"] and audit.actor_id == root.pk
    login = Client().post(
        "/admin/login/", {"username": mallory.email, "password": PASSWORD, "next": "/admin/"}
    )
    assert login.status_code == 200 and "Please enter the correct" in page_text(login)


def test_a_banned_users_existing_admin_session_stops_working(ada):
    boss = staff("boss@example.com", superuser=True)
    client = admin_client_for(boss)
    # Banned by a direct write that (unlike the service) leaves the session row in place.
    User.objects.filter(pk=boss.pk).update(banned_until=timezone.now() + timedelta(hours=1))

    response = client.get(USERS)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_lifting_a_ban_lets_the_user_sign_in_again(admin_client, ada):
    user_ban(user=ada, until=timezone.now() + timedelta(days=1), actor=None)

    response = action(admin_client, "unban_users", [ada])

    assert "Lifted the ban of 1 user(s)." in page_text(response)
    ada.refresh_from_db()
    assert ada.banned_until is None


def test_resend_verification_queues_an_email_for_unverified_users_only(admin_client, ada):
    verified = user_onboard(email="verified@example.com")
    User.objects.filter(pk=verified.pk).update(email_verified=True)
    before = EmailSend.objects.filter(template__key="verify-email").count()

    response = action(admin_client, "resend_verification", [ada, verified])

    text = page_text(response)
    assert "Queued 1 verification email(s)." in text and "Skipped 1 user(s)" in text
    assert EmailSend.objects.filter(template__key="verify-email").count() == before + 1
    assert EmailSend.objects.filter(user=ada, template__key="verify-email").count() == 2


# What a staff user's roles allow ---------------------------------------------------------------


def test_support_staff_can_revoke_sessions_but_not_grant_roles_or_edit(ada):
    support = staff("support@example.com", "users:read", "sessions:revoke")
    client = admin_client_for(support)
    session, _ = session_create(user=ada)

    page = page_text(client.get(change_url(ada)))
    assert "Revoke all sessions" in page
    changelist = page_text(client.get(USERS))
    assert "revoke_all_sessions" in changelist
    assert "grant_role" not in changelist and "ban_users" not in changelist

    client.post(revoke_url(ada), {"session": session.pk})
    assert not Session.objects.filter(pk=session.pk).exists()

    support_role = Role.objects.get(name="support")
    response = action(client, "grant_role", [ada], apply="Grant", role=support_role.pk)
    assert "No action selected." in page_text(response)
    assert not UserRole.objects.filter(user=ada, role=support_role).exists()
    assert client.post(f"{change_url(ada)[:-7]}delete/", {"post": "yes"}).status_code == 403


def test_staff_without_sessions_revoke_sees_no_revoke_button_and_is_refused(ada):
    reader = staff("reader@example.com", "users:read")
    client = admin_client_for(reader)
    session, _ = session_create(user=ada)

    assert "Revoke" not in page_text(client.get(change_url(ada)))
    assert client.post(revoke_url(ada), {"session": session.pk}).status_code == 403
    assert Session.objects.filter(pk=session.pk).exists()


def test_auditor_staff_sees_the_audit_log_read_only_and_no_user_management():
    auditor = staff("auditor@example.com")
    role_grant(user=auditor, role=Role.objects.get(name="auditor"))
    client = admin_client_for(auditor)

    index = client.get("/admin/")
    assert client.get(USERS).status_code == 403
    logs = client.get("/admin/audit_app/auditlog/")
    assert logs.status_code == 200
    row = AuditLog.objects.first()
    detail = page_text(client.get(f"/admin/audit_app/auditlog/{row.pk}/change/"))
    assert 'name="_save"' not in detail
    sections = [s["title"] for s in index.context["dashboard"]["sections"]]
    assert sections == ["Sign-ins in the last 24 h"]
    assert "/admin/auth_app/user/" not in page_text(index)


# The dashboard --------------------------------------------------------------------------------


def test_dashboard_counts_new_users_sessions_emails_and_failed_sign_ins(admin_client, ada):
    old = user_onboard(email="old@example.com")
    User.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    session_create(user=ada)
    EmailSend.objects.filter(user=ada).update(status="failed")
    Client().post("/admin/login/", {"username": ada.email, "password": "wrong password!"})

    dashboard = admin_client.get("/admin/").context["dashboard"]

    figures = {
        (s["title"], label): (count, url)
        for s in dashboard["sections"]
        for label, count, url in s["rows"]
    }
    # root, ada and old; old joined three days ago.
    assert figures[("Users", "All users")][0] == 3
    assert figures[("Users", "New in 24 h")][0] == 2
    assert figures[("Users", "New in 7 days")][0] == 3
    # admin_client's own admin session and ada's.
    assert figures[("Sessions", "Active sessions")][0] == 2
    assert figures[("Emails in the last 24 h", "Failed")][0] == 1
    assert figures[("Emails in the last 24 h", "Queued")][0] == 2
    count, url = figures[("Sign-ins in the last 24 h", "Failed sign-ins")]
    assert count == 1 and "event_type=auth.sign_in_failed" in url
    assert dashboard["recent_events"][0]["event"].event_type == "auth.sign_in_failed"


def test_every_dashboard_link_opens_a_filtered_list(admin_client, ada):
    dashboard = admin_client.get("/admin/").context["dashboard"]

    for section in dashboard["sections"]:
        for label, _count, url in section["rows"]:
            response = admin_client.get(url)
            assert response.status_code == 200, (label, url)
            assert "?e=1" not in response.request.get("QUERY_STRING", ""), (label, url)
    new_users = admin_client.get(dashboard["sections"][0]["rows"][1][2])
    assert {u.email for u in new_users.context["cl"].result_list} == {ada.email, "root@example.com"}


# Admin login: rate limited, locked out, audited -----------------------------------------------


def login(client: Client, email: str, password: str):
    return client.post(
        "/admin/login/", {"username": email, "password": password, "next": "/admin/"}
    )


@pytest.fixture
def generous_rate_limit(settings):
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (100, 10)}


def test_admin_login_is_audited_and_opens_a_session(root):
    client = Client(REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="TestBrowser/1")

    response = login(client, "ROOT@example.com", PASSWORD)

    assert response.status_code == 302 and response["Location"] == "/admin/"
    sign_in = AuditLog.objects.get(event_type="auth.sign_in", user_id=root.pk)
    assert sign_in.ip_address == "192.0.2.10" and sign_in.user_agent == "TestBrowser/1"
    assert Session.objects.filter(user=root).count() == 1
    assert client.get("/admin/").status_code == 200


def test_admin_login_failures_are_audited_without_the_password(root, generous_rate_limit):
    client = Client(REMOTE_ADDR="192.0.2.11")

    response = login(client, root.email, "not-the-password-123")

    assert response.status_code == 200
    assert "Please enter the correct email" in page_text(response)
    failed = AuditLog.objects.get(event_type="auth.sign_in_failed")
    assert failed.user_id == root.pk and failed.metadata["reason"] == "wrong_password"
    assert "not-the-password-123" not in str(failed.metadata)


def test_admin_login_locks_out_after_repeated_failures(root, generous_rate_limit):
    client = Client(REMOTE_ADDR="192.0.2.12")
    for _ in range(5):
        login(client, root.email, "wrong password")

    response = login(client, root.email, PASSWORD)

    assert response.status_code == 200
    text = page_text(response)
    assert "Too many failed sign-ins" in text and "Try again in 30 seconds" in text
    assert AuditLog.objects.filter(event_type="auth.locked_out", user_id=root.pk).count() == 1
    assert not Session.objects.filter(user=root).exists()
    # The lock is scoped to the address that failed.
    assert login(Client(REMOTE_ADDR="192.0.2.13"), root.email, PASSWORD).status_code == 302


def test_admin_login_is_rate_limited_per_address(root):
    client = Client(REMOTE_ADDR="192.0.2.14")
    for _ in range(3):
        login(client, "nobody@example.com", "wrong password")

    response = login(client, root.email, PASSWORD)

    assert response.status_code == 200
    assert "Too many requests" in page_text(response)
    assert not Session.objects.filter(user=root).exists()


def test_a_successful_admin_login_clears_earlier_failures(root, generous_rate_limit):
    client = Client(REMOTE_ADDR="192.0.2.15")
    for _ in range(4):
        login(client, root.email, "wrong password")
    assert login(client, root.email, PASSWORD).status_code == 302

    client = Client(REMOTE_ADDR="192.0.2.15")
    login(client, root.email, "wrong password")

    assert login(client, root.email, PASSWORD).status_code == 302
    assert not AuditLog.objects.filter(event_type="auth.locked_out").exists()
