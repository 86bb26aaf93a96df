"""Issue 15, class 4: identity normalisation.

alice@ with a fullwidth "sec" domain signed up beside `alice@sec.test`, and `alİce@sec.test`
(U+0130) slipped past alice's lockout because Python's lower() and PostgreSQL's disagree.
Every address now has one normal form and one comparison key (auth_app.addresses), used by
the unique constraint and by every look-up: API, admin, commands, lockouts.
"""

import contextlib
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from rest_framework.test import APIClient

from auth_app.addresses import email_key, email_normalize
from auth_app.models import RateLimit, User
from email_app.models import EmailSend
from platform_app.flows import user_onboard
from sv_sdk.errors import ValidationFailed

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
FULLWIDTH = "alice@\uff53\uff45\uff43.test"  # fullwidth s, e, c
DOTTED_I = "al\u0130ce@sec.test"  # alİce@sec.test
INVALID_IDNA = "alice@\u2603.test"  # a snowman: allowed by IDNA 2003, not by IDNA 2008

_ips = iter(range(1, 250))


def api() -> APIClient:
    return APIClient(REMOTE_ADDR=f"203.0.113.{next(_ips)}")


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code
    return body


@pytest.fixture
def alice():
    return user_onboard(email="alice@sec.test", password=PASSWORD, name="Alice")


@pytest.fixture
def root():
    return user_onboard(email="root@sec.test", password=PASSWORD, is_superuser=True)


def sign_in(client, email, password=PASSWORD):
    return client.post(
        "/api/v1/auth/sign-in", {"email": email, "password": password}, format="json"
    )


# The rule


@pytest.mark.parametrize(
    ("given", "normal", "key"),
    [
        (FULLWIDTH, "alice@sec.test", "alice@sec.test"),
        ("Alice@SEC.Test", "Alice@sec.test", "alice@sec.test"),
        ("  alice@sec.test ", "alice@sec.test", "alice@sec.test"),
        ("bob@B\u00fccher.example", "bob@xn--bcher-kva.example", "bob@xn--bcher-kva.example"),
        ("\uff41lice@sec.test", "alice@sec.test", "alice@sec.test"),  # fullwidth local part
        ("\u212aate@sec.test", "Kate@sec.test", "kate@sec.test"),  # Kelvin sign: NFKC is K
    ],
)
def test_class4_every_spelling_of_an_address_has_one_normal_form_and_key(given, normal, key):
    assert email_normalize(given) == normal
    assert email_key(given) == key


@pytest.mark.parametrize(
    "bad", [DOTTED_I, "al\u0131ce@sec.test", INVALID_IDNA, "alice@-sec-.test", "no-at-sign", ""]
)
def test_class4_an_address_without_a_normal_form_is_a_validation_error(bad):
    with pytest.raises(ValidationFailed) as raised:
        email_normalize(bad)
    assert "email" in raised.value.errors


# Uniqueness, through every path that creates or changes a user


def test_class4_api_sign_up_with_the_fullwidth_domain_is_email_taken(alice):
    response = api().post(
        "/api/v1/auth/sign-up", {"email": FULLWIDTH, "password": PASSWORD}, format="json"
    )

    assert_problem(response, 409, "email_taken")
    assert User.objects.count() == 1


def test_class4_a_new_account_is_stored_in_its_normal_form():
    response = api().post(
        "/api/v1/auth/sign-up",
        {"email": "Bob@\uff45xample.TEST", "password": PASSWORD},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["user"]["email"] == "Bob@example.test"
    user = User.objects.get()
    assert (user.email, user.email_key) == ("Bob@example.test", "bob@example.test")
    # The verification email goes to the normal form.
    assert EmailSend.objects.get(user=user).to_email == "Bob@example.test"


@pytest.mark.parametrize("bad", [DOTTED_I, INVALID_IDNA])
def test_class4_api_sign_up_with_an_address_without_normal_form_is_a_400(bad):
    response = api().post(
        "/api/v1/auth/sign-up", {"email": bad, "password": PASSWORD}, format="json"
    )

    body = assert_problem(response, 400, "validation_error")
    assert "email" in body["errors"]
    assert not User.objects.exists()


def test_class4_api_users_create_with_the_fullwidth_domain_is_email_taken(alice, root):
    client = api()
    client.force_authenticate(user=root)

    taken = client.post("/api/v1/users", {"email": FULLWIDTH}, format="json")
    invalid = client.post("/api/v1/users", {"email": INVALID_IDNA}, format="json")

    assert_problem(taken, 409, "email_taken")
    assert_problem(invalid, 400, "validation_error")
    assert User.objects.count() == 2


def test_class4_admin_add_and_change_refuse_another_spelling_of_a_taken_address(alice, root):
    client = Client()
    client.force_login(root)

    added = client.post("/admin/auth_app/user/add/", {"email": FULLWIDTH, "password": ""})
    invalid = client.post("/admin/auth_app/user/add/", {"email": INVALID_IDNA, "password": ""})
    page = client.get(f"/admin/auth_app/user/{root.pk}/change/")
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v not in (None, "", False)}
    data.update(email="ALICE@\uff53ec.test")
    for formset in page.context["inline_admin_formsets"]:
        data[f"{formset.formset.prefix}-TOTAL_FORMS"] = "0"
        data[f"{formset.formset.prefix}-INITIAL_FORMS"] = "0"
    changed = client.post(f"/admin/auth_app/user/{root.pk}/change/", data)

    assert added.status_code == 200 and b"already exists" in added.content
    assert invalid.status_code == 200 and b"not a valid internationalised domain" in invalid.content
    assert changed.status_code == 200 and b"already exists" in changed.content
    root.refresh_from_db()
    assert root.email == "root@sec.test" and User.objects.count() == 2


def test_class4_an_admin_change_stores_the_normal_form_and_its_key(root):
    client = Client()
    client.force_login(root)
    bob = user_onboard(email="bob@sec.test", password=PASSWORD)
    page = client.get(f"/admin/auth_app/user/{bob.pk}/change/")
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v not in (None, "", False)}
    data.update(email="Robert@\uff53ec.test")
    for formset in page.context["inline_admin_formsets"]:
        data[f"{formset.formset.prefix}-TOTAL_FORMS"] = "0"
        data[f"{formset.formset.prefix}-INITIAL_FORMS"] = "0"

    response = client.post(f"/admin/auth_app/user/{bob.pk}/change/", data)

    assert response.status_code == 302, response.content[:2000]
    bob.refresh_from_db()
    assert (bob.email, bob.email_key) == ("Robert@sec.test", "robert@sec.test")
    assert sign_in(api(), "robert@SEC.test").status_code == 200


def test_class4_commands_refuse_another_spelling_of_a_taken_address(alice):
    with pytest.raises(CommandError, match="already"):
        call_command("create_user", FULLWIDTH, stdout=io.StringIO())
    with pytest.raises(CommandError, match="internationalised domain"):
        call_command("create_user", INVALID_IDNA, stdout=io.StringIO())
    with pytest.raises(CommandError, match="already"):
        call_command("createsuperuser", email=FULLWIDTH, interactive=False, stdout=io.StringIO())
    with pytest.raises(CommandError, match="internationalised domain"):
        call_command("create_first_admin", email=INVALID_IDNA, stdout=io.StringIO())
    assert User.objects.count() == 1


def test_class4_create_first_admin_prints_the_stored_form_of_the_address():
    out = io.StringIO()
    call_command("create_first_admin", email="Root@\uff45xample.test", stdout=out)

    assert "email:    Root@example.test" in out.getvalue()


def test_class4_commands_find_a_user_by_any_spelling_of_their_address(alice):
    out = io.StringIO()
    call_command("user_permissions", "ALICE@\uff53\uff45\uff43.TEST", stdout=out)
    assert "user" in out.getvalue()


# Look-ups and lockouts


@pytest.mark.django_db(transaction=True)
def test_class4_sign_in_forgot_password_find_the_account_by_any_spelling(alice):
    from conftest import run_worker

    assert sign_in(api(), "ALICE@\uff53\uff45\uff43.test").status_code == 200

    response = api().post("/api/v1/auth/forgot-password", {"email": FULLWIDTH}, format="json")
    run_worker()

    assert response.status_code == 202
    assert EmailSend.objects.filter(template__key="reset-password", user=alice).exists()


@pytest.mark.parametrize(
    "path", ["/api/v1/auth/forgot-password", "/api/v1/auth/send-verification-email"]
)
def test_class4_an_invalid_idna_address_is_a_400_on_the_email_endpoints(path):
    body = assert_problem(
        api().post(path, {"email": INVALID_IDNA}, format="json"), 400, "validation_error"
    )
    assert "email" in body["errors"]


def test_class4_the_dotted_capital_i_does_not_bypass_alices_lockout(settings, alice):
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (100, 10)}
    attacker = api()
    for _ in range(settings.SV_LOCKOUT_THRESHOLD):
        assert sign_in(attacker, alice.email, "wrong password!").status_code == 401
    assert_problem(sign_in(attacker, alice.email), 429, "rate_limited")

    # Other spellings are the same account (one lock) or nobody's (never alice's password).
    for spelling in ("ALICE@sec.test", FULLWIDTH, "Alice@\uff53ec.TEST"):
        assert_problem(sign_in(attacker, spelling), 429, "rate_limited")
    assert_problem(sign_in(attacker, DOTTED_I), 401, "invalid_credentials")
    # One lock, keyed by alice's id, not by what was typed.
    (lock,) = RateLimit.objects.filter(key__startswith="lockout:", blocked_until__isnull=False)
    assert lock.key.endswith(f":user:{alice.pk}")


def test_class4_the_admin_login_shares_the_lock_whatever_the_spelling(settings, alice):
    settings.SV_RATE_LIMITS = {**settings.SV_RATE_LIMITS, "sign_in": (100, 10)}
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])

    def login(client, email, password):
        return client.post(
            "/admin/login/", {"username": email, "password": password, "next": "/admin/"}
        )

    client = Client(REMOTE_ADDR="198.51.100.44")
    for n in range(settings.SV_LOCKOUT_THRESHOLD):
        login(client, ("ALICE@sec.test", FULLWIDTH)[n % 2], "wrong password")
    locked = login(client, DOTTED_I, PASSWORD)
    also_locked = login(client, alice.email, PASSWORD)

    assert locked.status_code == 200 and b"Please enter the correct email" in locked.content
    assert also_locked.status_code == 200 and b"Too many failed sign-ins" in also_locked.content


# The migration, on a populated table


@pytest.mark.django_db(transaction=True)
def test_class4_the_migration_normalises_a_populated_table_and_names_what_it_cannot():
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    before = [("auth_app", "0003_encrypt_account_tokens")]
    executor.migrate(before)
    rows = [
        ("u1", "alice@sec.test", "2026-01-01"),
        ("u2", FULLWIDTH, "2026-01-02"),  # the review's duplicate, newer
        ("u3", "al\u0131ce@sec.test", "2026-01-03"),  # dotless i: no normal form
        ("u4", "Bob@Example.COM", "2026-01-04"),
    ]
    try:
        with connection.cursor() as cursor:
            for user_id, email, created in rows:
                cursor.execute(
                    'INSERT INTO "auth"."users" (id, email, email_verified, name, image,'
                    " password, is_active, is_staff, is_superuser, created_at, updated_at)"
                    " VALUES (%s, %s, false, '', '', '!', true, false, false, %s, %s)",
                    [user_id, email, created, created],
                )
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            executor = MigrationExecutor(connection)
            executor.migrate(leaves)

        keys = dict(User.objects.values_list("id", "email_key"))
        emails = dict(User.objects.values_list("id", "email"))
        assert keys["u1"] == "alice@sec.test" and emails["u2"] == FULLWIDTH
        assert keys["u2"] == "duplicate u2" and keys["u3"] == "invalid u3"
        assert (emails["u4"], keys["u4"]) == ("Bob@example.com", "bob@example.com")
        assert User.objects.with_email(FULLWIDTH).get().pk == "u1"
        assert not User.objects.with_email("al\u0131ce@sec.test").exists()
        assert "u2 (same address as an older account)" in out.getvalue()
        assert "u3 (no normal form)" in out.getvalue()
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(leaves)
