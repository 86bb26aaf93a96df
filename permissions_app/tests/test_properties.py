"""Property: after any sequence of changes, every cache row equals the permissions recomputed
from scratch, and every check answers what the assignments say at that moment."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth_app.models import User
from permissions_app import selectors, services
from permissions_app.errors import AssignmentNotFound, RoleInUse
from permissions_app.models import PermissionCache, Role

pytestmark = pytest.mark.django_db

USERS = 3
ROLES = 3
PERMISSIONS = ["users:read", "users:write", "users:*", "audit:read", "email:send", "*"]

user_index = st.integers(0, USERS - 1)
role_index = st.integers(0, ROLES - 1)
operations = st.one_of(
    st.tuples(
        st.just("grant"), user_index, role_index, st.none() | st.integers(1, 120)
    ),  # expiry in minutes
    st.tuples(st.just("revoke"), user_index, role_index),
    st.tuples(st.just("edit"), role_index, st.sets(st.sampled_from(PERMISSIONS), max_size=3)),
    st.tuples(st.just("delete"), role_index, st.booleans()),
    st.tuples(st.just("advance"), st.integers(1, 90)),
)


class Clock:
    def __init__(self):
        self.now = timezone.now()

    def __call__(self):
        return self.now


class Model:
    """What the permissions should be, kept in plain Python."""

    def __init__(self):
        self.roles: dict[int, set[str]] = {}
        self.assignments: dict[tuple[int, int], object] = {}

    def effective(self, user: int, now) -> tuple[set[str], set[int]]:
        roles = {
            role
            for (u, role), expires_at in self.assignments.items()
            if u == user and (expires_at is None or expires_at > now)
        }
        return set().union(*(self.roles[r] for r in roles)), roles


def apply(op, users, roles, model: Model, clock: Clock) -> None:
    kind, *args = op
    if kind == "grant":
        u, r, minutes = args
        if r not in model.roles:
            return
        expires_at = clock.now + timedelta(minutes=minutes) if minutes else None
        services.role_grant(user=users[u], role=roles[r], expires_at=expires_at)
        model.assignments[(u, r)] = expires_at
    elif kind == "revoke":
        u, r = args
        if r not in model.roles:
            return
        try:
            services.role_revoke(user=users[u], role=roles[r])
        except AssignmentNotFound:
            assert (u, r) not in model.assignments
        else:
            del model.assignments[(u, r)]
    elif kind == "edit":
        r, permissions = args
        if r in model.roles:
            services.role_update(role=roles[r], permissions=permissions)
            model.roles[r] = set(permissions)
    elif kind == "delete":
        r, force = args
        if r not in model.roles:
            return
        held = any(
            role == r and (exp is None or exp > clock.now)
            for (_, role), exp in model.assignments.items()
        )
        try:
            services.role_delete(role=roles[r], force=force)
        except RoleInUse:
            assert held and not force
        else:
            del model.roles[r]
            model.assignments = {k: v for k, v in model.assignments.items() if k[1] != r}
    else:
        clock.now += timedelta(minutes=args[0])


def check(users, roles, model: Model, clock: Clock) -> None:
    truth = selectors.permissions_compute(user_ids=[u.pk for u in users])
    caches = {c.user_id: c for c in PermissionCache.objects.filter(user__in=users)}
    for i, user in enumerate(users):
        permissions, held = model.effective(i, clock.now)
        names = sorted(roles[r].name for r in held)
        assert set(truth[user.pk].permissions) == permissions
        assert list(truth[user.pk].roles) == names
        loaded = User.objects.select_related("permission_cache").get(pk=user.pk)
        assert selectors.permissions_for_user(loaded) == permissions
        cache = caches[user.pk]
        if cache.valid_until is None or cache.valid_until > clock.now:
            # A row no expiry has overtaken must be exactly right.
            assert set(cache.permissions) == permissions
            assert cache.roles == names
        else:
            # An overtaken row is never trusted (above) and the repair fixes it.
            assert services.permission_cache_repair(user_ids=[user.pk]) != []
            caches[user.pk] = PermissionCache.objects.get(user=user)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops=st.lists(operations, max_size=20))
def test_every_cache_row_equals_the_permissions_recomputed_from_scratch(ops):
    clock, model = Clock(), Model()
    with mock.patch.object(selectors, "clock", clock), transaction.atomic():
        users = [User.objects.create(email=f"p{i}@example.com") for i in range(USERS)]
        services.permission_cache_refresh(user_ids=[u.pk for u in users])
        roles = []
        for r in range(ROLES):
            roles.append(services.role_create(name=f"prop-{r}", permissions=[PERMISSIONS[r]]))
            model.roles[r] = {PERMISSIONS[r]}
        check(users, roles, model, clock)
        for op in ops:
            apply(op, users, roles, model, clock)
            check(users, roles, model, clock)
        assert Role.objects.filter(name__startswith="prop-").count() == len(model.roles)
        transaction.set_rollback(True)
