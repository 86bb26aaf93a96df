"""Concurrent grants, revokes and role edits from separate connections leave no wrong cache row."""

import random
import threading
import time

import pytest
from django.db import connection, connections
from django.utils import timezone

from auth_app.models import User
from auth_app.tests.factories import UserFactory
from permissions_app import selectors, services
from permissions_app.catalogue import DEFAULT_USER_ROLE
from permissions_app.errors import AssignmentNotFound
from permissions_app.models import PermissionCache, Role
from permissions_app.tests.factories import RoleFactory
from platform_app.flows import user_onboard

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
STEPS = 15


def linger_after_cache_writes(execute, sql, params, many, context):
    # Hold each transaction open a little after it computed a cache row, as a
    # busy server would: without locking, another writer's snapshot then
    # misses this change and a stale row wins (the test fails in most runs).
    result = execute(sql, params, many, context)
    if '"permissions"."permission_cache"' in sql and sql.lstrip().startswith("INSERT"):
        time.sleep(0.003)
    return result


def disagreeing(user_ids) -> list[str]:
    """Users whose committed cache row differs from their committed assignments (one snapshot)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT truth.user_id FROM ({selectors.effective_sql("u.id = ANY(%(ids)s)")}) truth
            LEFT JOIN "permissions"."permission_cache" cache ON cache.user_id = truth.user_id
            WHERE cache.permissions IS DISTINCT FROM truth.permissions
               OR cache.roles IS DISTINCT FROM truth.roles
            """,  # noqa: S608
            {"now": timezone.now(), "ids": list(user_ids)},
        )
        return [user_id for (user_id,) in cursor.fetchall()]


def run_concurrently(work, user_ids) -> list[str]:
    """Run work(i) in THREADS threads started together while another thread keeps comparing
    the users' caches with the truth; return what went wrong."""
    barrier = threading.Barrier(THREADS + 1)
    failures = []
    done = threading.Event()

    def watch():
        try:
            barrier.wait()
            while not done.is_set():
                wrong = disagreeing(user_ids)
                if wrong:
                    failures.append(f"cache disagrees for {wrong}")
                    return
        finally:
            connections.close_all()

    def target(i):
        try:
            barrier.wait()
            with connections["default"].execute_wrapper(linger_after_cache_writes):
                work(i)
        except Exception as exc:  # reported by the test
            failures.append(repr(exc))
        finally:
            connections.close_all()

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=target, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    return failures


def test_concurrent_grants_and_revokes_of_one_user_never_leave_a_disagreeing_cache():
    user = UserFactory()
    roles = [RoleFactory(permissions=[p]) for p in ("users:read", "audit:read", "email:read")]

    def work(i):
        rng = random.Random(i)
        for _ in range(STEPS):
            role = Role.objects.get(pk=rng.choice(roles).pk)
            target = User.objects.get(pk=user.pk)
            if rng.random() < 0.5:
                services.role_grant(user=target, role=role)
            else:
                try:
                    services.role_revoke(user=target, role=role)
                except AssignmentNotFound:
                    pass

    assert run_concurrently(work, [user.pk]) == []
    assert services.permission_cache_repair(user_ids=[user.pk]) == []


def test_role_edits_racing_grants_to_its_holders_never_leave_a_disagreeing_cache():
    users = [UserFactory() for _ in range(4)]
    role = RoleFactory(permissions=["users:read"])
    other = RoleFactory(permissions=["audit:read"])
    choices = ["users:read", "users:write", "email:read", "sessions:read"]

    def work(i):
        rng = random.Random(100 + i)
        for step in range(STEPS):
            if i % 2:
                picked = rng.sample(choices, 2)
                services.role_update(role=Role.objects.get(pk=role.pk), permissions=picked)
                continue
            target = User.objects.get(pk=rng.choice(users).pk)
            granted = Role.objects.get(pk=(role if step % 2 else other).pk)
            try:
                if rng.random() < 0.6:
                    services.role_grant(user=target, role=granted)
                else:
                    services.role_revoke(user=target, role=granted)
            except AssignmentNotFound:
                pass

    assert run_concurrently(work, [u.pk for u in users]) == []
    assert services.permission_cache_repair(user_ids=[u.pk for u in users]) == []
    assert PermissionCache.objects.filter(user__in=users).count() == len(users)


def test_sign_ups_racing_edits_of_the_default_role_never_leave_a_disagreeing_cache():
    # user_onboard writes a new user's cache row from the role it reads under
    # the role's shared lock; an edit of that role must either come first (and
    # the row shows it) or wait for the sign-up to commit (and then refresh it).
    role_id = Role.objects.get(name=DEFAULT_USER_ROLE).pk
    core = ["profile:read", "profile:write"]  # the user role keeps these (SYSTEM_ROLE_CORE)
    choices = ["users:read", "email:read", "email:send", "audit:read"]
    signed_up: list[str] = []  # grows while the watcher reads it

    def work(i):
        rng = random.Random(300 + i)
        for step in range(STEPS):
            if i % 2:
                picked = [*core, *rng.sample(choices, 2)]
                services.role_update(role=Role.objects.get(pk=role_id), permissions=picked)
            else:
                signed_up.append(user_onboard(email=f"racer-{i}-{step}@example.com").pk)

    assert run_concurrently(work, signed_up) == []
    assert len(signed_up) == THREADS // 2 * STEPS
    assert services.permission_cache_repair(user_ids=signed_up) == []
