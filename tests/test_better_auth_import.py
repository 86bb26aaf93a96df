"""import_better_auth against a real better-auth server: its users sign in here with their old
passwords, their sessions stay signed in, and a second run changes nothing."""

import io
import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import requests
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from audit_app.models import AuditLog
from auth_app.models import Account, Session, User, Verification
from conftest import table_counts
from permissions_app.models import PermissionCache
from platform_app.flows import user_onboard
from platform_app.invariants import invariants_check
from tests.better_auth import HERE, node_missing
from tests.support import Terminal, assert_problem

pytestmark = pytest.mark.django_db

HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "auth_app.hashers.BetterAuthScryptPasswordHasher",
]
# Compatibility characters: better-auth NFKC-normalises before hashing, and so must we.
BOB_PASSWORD = "Ｂｏｂ’s ﬁrst passphrase Ⅻ"  # noqa: RUF001
ALICE_PASSWORD = "alice's old password"
CAROL_PASSWORD = "carol's old password"
_ips = (f"203.0.113.{i}" for i in itertools.count(1))


def _url(name: str, login: tuple[str, str] | None = None) -> str:
    """A URL of database `name` on the server the tests use (TCP or a socket directory), as
    the tests' role or as `login` (role, password)."""
    db = settings.DATABASES["default"]
    user, password = login or (db.get("USER") or "postgres", db.get("PASSWORD") or "")
    user, password = quote(user), f":{quote(password)}" if password else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or "5432"
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{name}?host={quote(host)}&port={port}"
    return f"postgresql://{user}{password}@{host}:{port}/{name}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class BetterAuth:
    """The running server, its database, and what it mailed."""

    def __init__(self, name: str, base: str, log: Path):
        self.name, self.url, self.base, self.log = name, _url(name), base, log

    def post(self, path: str, body: dict, **kwargs) -> requests.Response:
        response = requests.post(f"{self.base}/api/auth{path}", json=body, timeout=10, **kwargs)
        assert response.status_code == 200, response.text
        return response

    def sign_up(self, email: str, password: str, name: str) -> dict:
        return self.post("/sign-up/email", {"email": email, "password": password, "name": name})

    def sign_in(self, email: str, password: str) -> str:
        return self.post("/sign-in/email", {"email": email, "password": password}).json()["token"]

    def mailed(self, kind: str, email: str) -> str:
        """The token of the last `kind` email to `email`."""
        lines = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [m for m in lines if m["kind"] == kind and m["email"] == email][-1]["token"]

    def sql(self, query: str, params=()) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def better_auth(tmp_path_factory, django_db_blocker):
    """A better-auth server on a scratch database, filled through its own API."""
    missing = node_missing()
    if missing:
        pytest.skip(missing)
    name = f"better_auth_{uuid.uuid4().hex[:10]}"
    with django_db_blocker.unblock(), psycopg.connect(_url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    log = tmp_path_factory.mktemp("better_auth") / "mail.jsonl"
    log.touch()
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603
        [shutil.which("node"), "server.mjs"],
        cwd=HERE,
        env={
            **os.environ,
            "DATABASE_URL": _url(name),
            "PORT": str(port),
            "VERIFICATION_LOG": str(log),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.strip() == f"listening {port}", line + process.stderr.read()
        server = BetterAuth(name, f"http://127.0.0.1:{port}", log)
        yield _fill(server)
    finally:
        process.terminate()
        process.wait(timeout=10)
        with django_db_blocker.unblock(), psycopg.connect(_url("postgres"), autocommit=True) as a:
            a.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fill(server: BetterAuth) -> BetterAuth:
    alice = server.sign_up("alice@example.com", ALICE_PASSWORD, "Alice")
    bob = server.sign_up("bob@example.com", BOB_PASSWORD, "Bob")
    carol = server.sign_up("carol@example.com", CAROL_PASSWORD, "Carol")
    server.ids = {"alice": alice.json()["user"]["id"], "bob": bob.json()["user"]["id"]}
    server.ids["carol"] = carol.json()["user"]["id"]
    # Two live sessions of Alice, from sign-up and a later sign-in.
    server.alice_tokens = [
        alice.json()["token"],
        server.sign_in("alice@example.com", ALICE_PASSWORD),
    ]
    server.bob_token = bob.json()["token"]
    # Alice verifies her address through better-auth's link; Bob's verification stays pending.
    server.post("/send-verification-email", {"email": "alice@example.com"})
    token = server.mailed("verify-email", "alice@example.com")
    verified = requests.get(
        f"{server.base}/api/auth/verify-email",
        params={"token": token, "callbackURL": "/"},
        timeout=10,
        allow_redirects=False,
    )
    assert verified.status_code in (200, 302), verified.text
    server.post("/send-verification-email", {"email": "bob@example.com"})
    # Carol asked for a password reset and has not used the link yet.
    server.post("/request-password-reset", {"email": "carol@example.com", "redirectTo": "/r"})
    server.reset_token = server.mailed("reset-password", "carol@example.com")

    # What the API cannot make without a provider or without waiting, written as it would be.
    past = timezone.now() - timedelta(days=1)
    server.expired_token = secrets.token_urlsafe(24)
    server.sql(
        'INSERT INTO "session" ("id", "token", "userId", "expiresAt", "createdAt", "updatedAt")'
        " VALUES (%s, %s, %s, %s, %s, %s)",
        ["expiredsession", server.expired_token, server.ids["bob"], past, past, past],
    )
    server.expired_reset = secrets.token_urlsafe(18)
    server.sql(
        'INSERT INTO "verification" ("id", "identifier", "value", "expiresAt")'
        " VALUES (%s, %s, %s, %s)",
        ["expiredreset", f"reset-password:{server.expired_reset}", server.ids["carol"], past],
    )
    # Dave signed up with GitHub only: no password, a provider account with tokens.
    server.ids["dave"] = "daveFromGithub0000000000000000000"
    server.sql(
        'INSERT INTO "user" ("id", "name", "email", "emailVerified", "image")'
        " VALUES (%s, 'Dave', 'dave@example.com', true, 'https://avatars.example/dave.png')",
        [server.ids["dave"]],
    )
    server.sql(
        'INSERT INTO "account" ("id", "accountId", "providerId", "userId", "accessToken",'
        ' "refreshToken", "scope", "updatedAt") VALUES'
        " ('daveaccount', '4242', 'github', %s, 'gho_plaintext_access', 'ghr_plaintext_refresh',"
        " 'read:user,user:email', now())",
        [server.ids["dave"]],
    )
    return server


def run(*args, stdout=None) -> str:
    out = stdout or io.StringIO()
    call_command("import_better_auth", *args, stdout=out)
    return out.getvalue()


def sign_in(email: str, password: str):
    return APIClient(REMOTE_ADDR=next(_ips)).post(
        "/api/v1/auth/sign-in", {"email": email, "password": password}, format="json"
    )


def bearer(token: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=next(_ips))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_imported_users_sign_in_with_their_old_passwords_rehashed_to_argon2id(
    better_auth, settings
):
    settings.PASSWORD_HASHERS = HASHERS
    output = run(better_auth.url)

    assert "Imported 4 users, 1 provider accounts, 4 sessions and 1 password-reset tokens" in output
    bob = User.objects.get(email="bob@example.com")
    assert bob.pk == better_auth.ids["bob"]
    assert bob.password.startswith("better_auth_scrypt$")
    assert sign_in("bob@example.com", BOB_PASSWORD).status_code == 200
    bob.refresh_from_db()
    assert bob.password.startswith("argon2$argon2id$")
    # The new hash still takes the same password; a wrong one is refused as ever.
    assert sign_in("bob@example.com", BOB_PASSWORD).status_code == 200
    assert_problem(sign_in("alice@example.com", BOB_PASSWORD), 401, "invalid_credentials")
    assert sign_in("alice@example.com", ALICE_PASSWORD).status_code == 200


def test_imported_users_are_onboarded_with_their_ids_role_and_one_audit_row(better_auth):
    run(better_auth.url)

    users = {u.email: u for u in User.objects.all()}
    assert {u.pk for u in users.values()} == set(better_auth.ids.values())
    assert users["alice@example.com"].email_verified is True
    assert users["bob@example.com"].email_verified is False
    assert users["dave@example.com"].image == "https://avatars.example/dave.png"
    assert not users["dave@example.com"].has_usable_password()
    caches = PermissionCache.objects.filter(user__in=users.values())
    assert sorted(c.roles for c in caches) == [["user"]] * 4
    imported = AuditLog.objects.filter(event_type="user.imported")
    assert sorted(imported.values_list("user_id", flat=True)) == sorted(better_auth.ids.values())
    assert imported.get(user_id=better_auth.ids["dave"]).metadata["sign_in_methods"] == ["github"]
    # No secret reached the audit trail.
    trail = json.dumps(list(AuditLog.objects.values("metadata")))
    assert better_auth.alice_tokens[0] not in trail and "scrypt" not in trail
    # The cross-schema invariants hold for imported users as for onboarded ones.
    assert invariants_check() == []


def test_old_session_tokens_stay_signed_in_and_expired_ones_do_not(better_auth):
    run(better_auth.url)

    for token in [*better_auth.alice_tokens, better_auth.bob_token]:
        response = bearer(token).get("/api/v1/auth/session")
        assert response.status_code == 200, response.content
    assert (
        bearer(better_auth.alice_tokens[1]).get("/api/v1/auth/session").json()["user"]["id"]
        == better_auth.ids["alice"]
    )
    assert_problem(
        bearer(better_auth.expired_token).get("/api/v1/auth/session"), 401, "not_authenticated"
    )
    # Tokens are stored hashed, as every session's.
    stored = list(Session.objects.values_list("token_hash", flat=True))
    assert better_auth.bob_token not in stored and len(stored) == 4


def test_a_pending_reset_link_still_works_and_an_expired_one_does_not(better_auth):
    run(better_auth.url)

    client = APIClient(REMOTE_ADDR=next(_ips))
    expired = client.post(
        "/api/v1/auth/reset-password",
        {"token": better_auth.expired_reset, "new_password": "a brand new passphrase"},
        format="json",
    )
    assert_problem(expired, 400, "token_invalid")
    reset = client.post(
        "/api/v1/auth/reset-password",
        {"token": better_auth.reset_token, "new_password": "a brand new passphrase"},
        format="json",
    )
    assert reset.status_code == 200, reset.content
    assert sign_in("carol@example.com", "a brand new passphrase").status_code == 200
    assert better_auth.reset_token not in set(
        Verification.objects.values_list("value_hash", flat=True)
    )


def test_provider_accounts_arrive_with_their_tokens_encrypted(better_auth):
    run(better_auth.url)

    account = Account.objects.get(provider_id="github", account_id="4242")
    assert account.user_id == better_auth.ids["dave"]
    assert account.access_token == "gho_plaintext_access"
    assert account.refresh_token == "ghr_plaintext_refresh"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT access_token, refresh_token FROM {Account._meta.db_table} WHERE id = %s",  # noqa: S608
            [account.pk],
        )
        raw = " ".join(cursor.fetchone())
    assert "plaintext" not in raw


def test_a_second_import_changes_nothing(better_auth):
    run(better_auth.url)
    before = table_counts()

    output = run(better_auth.url)

    assert table_counts() == before
    assert "4 already imported, 0 to import, 0 in conflict" in output


def test_dry_run_reports_counts_and_writes_nothing(better_auth):
    before = table_counts()
    output = run(better_auth.url, "--dry-run")

    assert table_counts() == before
    assert "users: 4 in the source, 0 already imported, 4 to import, 0 in conflict" in output
    assert "3 passwords, 1 provider accounts, 4 live sessions (1 expired, skipped)" in output
    assert "1 pending password resets (1 expired, skipped)" in output


@pytest.fixture
def conflicts(better_auth):
    """Users the import cannot take as they are, added to the source for one test."""
    rows = [
        # The same address as Alice's but for its letter case: better-auth's unique
        # constraint lets it in, sv_sdk's one comparison rule does not.
        ("aliceUpper", "ALICE@example.com"),
        ("nocredential", "nobody@example.com"),
        ("takenhere", "erin@example.com"),
    ]
    for user_id, email in rows:
        better_auth.sql(
            'INSERT INTO "user" ("id", "name", "email", "emailVerified")'
            " VALUES (%s, %s, %s, false)",
            [user_id, user_id, email],
        )
    ((password,),) = better_auth.sql(
        'SELECT "password" FROM "account" WHERE "userId" = %s', [better_auth.ids["alice"]]
    )
    for user_id in ("aliceUpper", "takenhere"):
        better_auth.sql(
            'INSERT INTO "account" ("id", "accountId", "providerId", "userId", "password",'
            " \"updatedAt\") VALUES (%s, %s, 'credential', %s, %s, now())",
            [f"{user_id}-credential", user_id, user_id, password],
        )
    user_onboard(email="Erin@Example.com")
    yield better_auth
    better_auth.sql('DELETE FROM "user" WHERE "id" = ANY(%s)', [[user_id for user_id, _ in rows]])


def test_conflicts_fail_the_dry_run_and_the_import_unless_skipped(conflicts):
    out = io.StringIO()
    with pytest.raises(CommandError, match="4 users conflict; nothing was imported"):
        run(conflicts.url, "--dry-run", stdout=out)
    report = out.getvalue()
    assert "duplicate_email: user aliceUpper <ALICE@example.com>" in report
    assert f"duplicate_email: user {conflicts.ids['alice']} <alice@example.com>" in report
    assert "no_credential: user nocredential <nobody@example.com>" in report
    assert "email_taken: user takenhere <erin@example.com>" in report
    before = table_counts()
    with pytest.raises(CommandError):
        run(conflicts.url)
    assert table_counts() == before

    run(conflicts.url, "--dry-run", "--on-conflict=skip")
    output = run(conflicts.url, "--on-conflict=skip")

    assert "Imported 3 users" in output
    assert set(User.objects.values_list("email", flat=True)) == {
        "Erin@example.com",
        "bob@example.com",
        "carol@example.com",
        "dave@example.com",
    }


def test_progress_is_a_bar_on_a_terminal_and_lines_when_piped(better_auth):
    piped = run(better_auth.url, "--dry-run")
    assert "\r" not in piped

    terminal = Terminal()
    run(better_auth.url, "--batch-size", "3", stdout=terminal)
    assert "\rimporting users [" in terminal.getvalue()
    assert "4/4" in terminal.getvalue()

    User.objects.all().delete()
    lines = run(better_auth.url, "--batch-size", "3")
    assert "imported 3/4 users\nimported 4/4 users\n" in lines


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@127.0.0.1/auth", "must be a postgres:// or postgresql:// URL"),
        ("not a url", "must be a postgres:// or postgresql:// URL"),
        ("postgresql://nobody:hunter2@127.0.0.1:1/auth", "cannot connect to"),
    ],
)
def test_bad_or_unreachable_urls_are_refused_without_a_traceback(url, message):
    with pytest.raises(CommandError, match=message) as refused:
        run(url)
    assert "hunter2" not in str(refused.value)


def test_a_database_that_is_not_better_auths_is_refused(better_auth):
    with pytest.raises(CommandError, match="not a better-auth database"):
        run(_url("postgres"))
    with pytest.raises(CommandError, match='table "session" has no column'):
        better_auth.sql('ALTER TABLE "session" RENAME COLUMN "token" TO "tok"')
        try:
            run(better_auth.url)
        finally:
            better_auth.sql('ALTER TABLE "session" RENAME COLUMN "tok" TO "token"')
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        run(better_auth.url, "--batch-size", "0")


def test_the_admin_plugins_ban_is_kept_and_its_roles_are_counted(better_auth):
    better_auth.sql(
        'ALTER TABLE "user" ADD COLUMN "role" text, ADD COLUMN "banned" boolean,'
        ' ADD COLUMN "banExpires" timestamptz'
    )
    try:
        better_auth.sql(
            'UPDATE "user" SET "role" = \'admin\', "banned" = true WHERE "id" = %s',
            [better_auth.ids["bob"]],
        )
        output = run(better_auth.url)
    finally:
        better_auth.sql(
            'ALTER TABLE "user" DROP COLUMN "role", DROP COLUMN "banned", DROP COLUMN "banExpires"'
        )

    assert "1 users have a better-auth role other than 'user'" in output
    assert_problem(sign_in("bob@example.com", BOB_PASSWORD), 403, "account_disabled")
    assert_problem(
        bearer(better_auth.bob_token).get("/api/v1/auth/session"), 401, "not_authenticated"
    )
    assert sign_in("alice@example.com", ALICE_PASSWORD).status_code == 200


def test_tables_named_in_the_plural_are_found(better_auth):
    tables = ("user", "session", "account", "verification")
    for table in tables:
        better_auth.sql(f'ALTER TABLE "{table}" RENAME TO "{table}s"')
    try:
        output = run(better_auth.url)
    finally:
        for table in tables:
            better_auth.sql(f'ALTER TABLE "{table}s" RENAME TO "{table}"')

    assert "Imported 4 users" in output


def test_a_table_the_role_cannot_read_is_a_message_not_a_traceback(better_auth):
    role, password = f"reader_{uuid.uuid4().hex[:8]}", secrets.token_hex(8)
    better_auth.sql(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    # It sees every table (any privilege shows the columns) but may not read the sessions.
    better_auth.sql(f'GRANT SELECT ON "user", "account", "verification" TO "{role}"')
    better_auth.sql(f'GRANT UPDATE ON "session" TO "{role}"')
    url = _url(better_auth.name, login=(role, password))
    try:
        with pytest.raises(CommandError, match="reading the better-auth database failed"):
            run(url, "--dry-run")
    finally:
        better_auth.sql(f'DROP OWNED BY "{role}"')
        better_auth.sql(f'DROP ROLE "{role}"')
