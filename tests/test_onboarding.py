"""user_onboard: everything in one transaction, or nothing at all."""

import re
import threading

import pytest
from django.core import mail
from django.db import DatabaseError, connection, connections

from audit_app.models import AuditLog
from auth_app.errors import EmailTaken
from auth_app.models import User, Verification
from auth_app.tokens import token_hash
from conftest import run_worker, table_counts
from email_app.models import EmailSend
from permissions_app.catalogue import DEFAULT_USER_ROLE, SUPERUSER_ROLE
from permissions_app.models import PermissionCache, Role, UserRole
from permissions_app.services import permission_cache_repair
from platform_app.flows import user_onboard
from tests.faults import FailAt, InjectedFault

pytestmark = pytest.mark.django_db(transaction=True)


def jobs():
    with connection.cursor() as cursor:
        cursor.execute("SELECT task_name, args->>'send_id' FROM procrastinate_jobs ORDER BY id")
        return cursor.fetchall()


def test_onboarding_writes_user_role_cache_audit_verification_email_and_job():
    user = user_onboard(email="Ada@Example.com", password="correct horse battery", name="Ada")

    user.refresh_from_db()
    assert user.email == "Ada@example.com"  # stored as given, domain lower-cased
    assert user.check_password("correct horse battery")
    assert [ur.role.name for ur in UserRole.objects.filter(user=user)] == ["user"]
    cache = PermissionCache.objects.get(user=user)
    assert cache.roles == ["user"]
    assert set(cache.permissions) == {"profile:read", "profile:write"}
    created = AuditLog.objects.get(event_type="user.created")
    assert created.user_id == user.pk and created.target_id == user.pk
    verification = Verification.objects.get(user=user)
    assert verification.identifier == f"email-verification:{user.pk}"
    send = EmailSend.objects.get(user=user)
    assert send.status == EmailSend.Status.QUEUED
    assert send.template.key == "verify-email"
    assert send.category == "account"
    assert jobs() == [("email.deliver", send.pk)]


@pytest.mark.parametrize("is_superuser", [False, True])
def test_a_new_users_cache_row_is_the_one_a_full_recompute_writes(is_superuser):
    # The sign-up writes the cache row from the one role it grants; it must be
    # exactly what the general refresh computes from the tables, even for a
    # role whose stored permissions are out of order, repeated or NULL.
    role = Role.objects.get(name=SUPERUSER_ROLE if is_superuser else DEFAULT_USER_ROLE)
    Role.objects.filter(pk=role.pk).update(
        permissions=["profile:write", None, "profile:read", "profile:write"]
    )

    user = user_onboard(email="ada@example.com", is_superuser=is_superuser)

    assert permission_cache_repair(user_ids=[user.pk]) == []
    cache = PermissionCache.objects.get(user=user)
    assert cache.roles == [role.name]
    assert cache.valid_until is None
    if is_superuser:
        assert cache.permissions == ["*"]
    else:
        assert cache.permissions == ["profile:read", "profile:write"]


def test_the_worker_delivers_the_verification_email_with_a_working_link(settings):
    settings.SV_PUBLIC_URL = "https://id.example.org"
    user = user_onboard(email="grace@example.com", name="Grace")

    run_worker()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["grace@example.com"]
    assert message.subject == "Confirm your email address"
    token = re.search(r"https://id\.example\.org/verify-email\?token=([\w-]+)", message.body)[1]
    assert Verification.objects.get(user=user).value_hash == token_hash(token)
    send = EmailSend.objects.get(user=user)
    assert send.status == EmailSend.Status.SENT
    # Once delivered, the stored copy no longer carries the token.
    assert token not in send.text_body and token not in send.html_body
    assert token not in str(send.context)
    assert AuditLog.objects.filter(event_type="email.sent", target_id=send.pk).exists()


STEPS = {
    "user": r'INSERT INTO "auth"\."users"',
    "role": r'INSERT INTO "permissions"\."user_roles"',
    "cache": r'INSERT INTO "permissions"\."permission_cache"',
    "audit": r'INSERT INTO "audit"\."audit_logs"',
    "verification": r'INSERT INTO "auth"\."verifications"',
    "email row": r'INSERT INTO "email"\."email_sends"',
    "job": r"procrastinate_defer",
}


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_any_step_leaves_no_row_in_any_schema_and_no_job(step):
    before = table_counts()

    with connection.execute_wrapper(FailAt(pattern=STEPS[step])):
        with pytest.raises(InjectedFault):
            user_onboard(email="ada@example.com", password="correct horse battery")

    assert table_counts() == before
    run_worker()
    assert mail.outbox == []


def test_a_failure_at_every_single_query_of_the_flow_rolls_everything_back():
    counter = FailAt()
    with connection.execute_wrapper(counter):
        user_onboard(email="probe@example.com")
    # Three round trips: what the writes depend on, the audit rows' ids, then
    # every write (sv_sdk.db.batch).
    queries = counter.count
    assert queries == 3
    before = table_counts()

    for nth in range(1, queries + 1):
        with connection.execute_wrapper(FailAt(nth=nth)):
            with pytest.raises(InjectedFault):
                user_onboard(email="ada@example.com")
        assert table_counts() == before, f"query {nth} of {queries} left rows behind"

    run_worker()
    assert [m.to for m in mail.outbox] == [["probe@example.com"]]


# Every table the write batch inserts into, in the batch's order.
WRITTEN = [
    "auth.users",
    "permissions.user_roles",
    "permissions.permission_cache",
    "auth.verifications",
    "email.email_sends",
    "public.procrastinate_jobs",
    "audit.audit_logs",
]


@pytest.mark.parametrize("table", WRITTEN)
def test_a_server_side_failure_inside_the_write_batch_leaves_nothing_behind(table):
    # The batch is one query of several statements: the server runs them in
    # order and stops at the first error. A trigger makes one of them fail
    # after the earlier ones have written their rows.
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER test_refuse BEFORE INSERT ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse()"
        )
    before = table_counts()
    try:
        with pytest.raises(DatabaseError, match="refused by test"):
            user_onboard(email="ada@example.com")
        assert table_counts() == before
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER test_refuse ON {table}")
    run_worker()
    assert mail.outbox == []


def test_the_email_is_never_sent_for_a_user_that_was_rolled_back():
    # The job is deferred before the final audit row; fail that row.
    with connection.execute_wrapper(FailAt(pattern=r'INSERT INTO "audit"\."audit_logs"')):
        with pytest.raises(InjectedFault):
            user_onboard(email="ghost@example.com")

    assert jobs() == []
    run_worker()
    assert mail.outbox == []
    assert not User.objects.filter(email="ghost@example.com").exists()


def test_email_is_unique_whatever_its_letter_case():
    user_onboard(email="a@x.io")
    before = table_counts()

    with pytest.raises(EmailTaken):
        user_onboard(email="A@X.IO")

    assert table_counts() == before


def test_twenty_concurrent_onboardings_of_one_email_give_one_user_and_nineteen_email_taken():
    barrier = threading.Barrier(20)
    outcomes = []

    def onboard(i):
        try:
            barrier.wait()
            # Vary the letter case: uniqueness ignores it.
            email = "Race@Example.com" if i % 2 else "race@example.com"
            user_onboard(email=email)
            outcomes.append("created")
        except EmailTaken:
            outcomes.append("email_taken")
        except Exception as exc:  # any other outcome fails the test below
            outcomes.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=onboard, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created"] + ["email_taken"] * 19
    assert User.objects.count() == 1
    user = User.objects.get()
    assert UserRole.objects.filter(user=user).count() == 1
    assert PermissionCache.objects.filter(user=user).count() == 1
    assert AuditLog.objects.filter(event_type="user.created").count() == 1
    assert EmailSend.objects.count() == 1
    assert len(jobs()) == 1
