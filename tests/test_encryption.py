"""Provider tokens encrypted at rest, key rotation, and the production settings' refusals."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from auth_app.models import Account, User
from sv_sdk.crypto import DecryptionError, development_key
from tests.support import Terminal

ROOT = Path(__file__).resolve().parent.parent
TOKENS = {
    "access_token": "gho_plain-access-token-1234",
    "refresh_token": "ghr_plain-refresh-token-5678",
    "id_token": "eyJhbGciOi.plain-id-token.sig",
}


def new_key() -> str:
    return Fernet.generate_key().decode()


def raw_tokens(account_id: str) -> dict[str, str]:
    """The token columns exactly as PostgreSQL stores them."""
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT access_token, refresh_token, id_token FROM "auth"."accounts" WHERE id = %s',
            [account_id],
        )
        return dict(zip(TOKENS, cursor.fetchone(), strict=True))


def linked_account(**tokens) -> Account:
    user = User.objects.create_user(email="ada@example.com")
    return Account.objects.create(
        user=user, provider_id="github", account_id="42", **(tokens or TOKENS)
    )


@pytest.mark.django_db
def test_provider_tokens_are_ciphertext_in_the_database_and_plaintext_through_the_orm():
    account = linked_account()

    stored = raw_tokens(account.pk)
    for column, plaintext in TOKENS.items():
        assert plaintext not in stored[column]
        assert stored[column].startswith("gAAAAA")  # a Fernet token
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM "auth"."accounts" t WHERE t::text LIKE '%%plain%%'"""
        )
        assert cursor.fetchone()[0] == 0

    again = Account.objects.get(pk=account.pk)
    assert {column: getattr(again, column) for column in TOKENS} == TOKENS


@pytest.mark.django_db
def test_an_empty_token_stays_empty():
    account = linked_account(access_token="", refresh_token="", id_token="")
    assert raw_tokens(account.pk) == {"access_token": "", "refresh_token": "", "id_token": ""}
    assert Account.objects.get().access_token == ""


@pytest.mark.django_db
def test_rotation_moves_every_token_to_the_new_key_so_the_old_one_can_go(settings):
    old, new = new_key(), new_key()
    settings.SV_ENCRYPTION_KEYS = [old]
    account = linked_account()
    written_with_old = raw_tokens(account.pk)

    # The new key goes first; rows written with the old one still read.
    settings.SV_ENCRYPTION_KEYS = [new, old]
    assert Account.objects.get().access_token == TOKENS["access_token"]
    assert raw_tokens(account.pk) == written_with_old

    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert 'Re-encrypted 3 values in "auth"."accounts"' in out.getvalue()
    assert not any(plaintext in out.getvalue() for plaintext in TOKENS.values())
    for column, token in raw_tokens(account.pk).items():
        assert Fernet(new).decrypt(token.encode()).decode() == TOKENS[column]
        with pytest.raises(InvalidToken):
            Fernet(old).decrypt(token.encode())

    settings.SV_ENCRYPTION_KEYS = [new]
    again = Account.objects.get()
    assert {column: getattr(again, column) for column in TOKENS} == TOKENS


@pytest.mark.django_db
def test_dropping_a_key_before_rotating_makes_reads_fail_without_showing_the_token(settings):
    settings.SV_ENCRYPTION_KEYS = [new_key()]
    linked_account()
    settings.SV_ENCRYPTION_KEYS = [new_key()]

    with pytest.raises(DecryptionError, match=r"auth.*accounts.*access_token") as excinfo:
        Account.objects.get()
    assert "plain" not in str(excinfo.value)
    with pytest.raises(CommandError, match="cannot be decrypted with any key") as excinfo:
        call_command("rotate_encryption_keys", stdout=io.StringIO())
    assert "gAAAAA" not in str(excinfo.value)


@pytest.mark.django_db
def test_rotate_refuses_a_malformed_key_without_printing_it(settings):
    settings.SV_ENCRYPTION_KEYS = [new_key(), "not-a-fernet-key-but-a-secret"]
    with pytest.raises(CommandError, match="key 2 of 2 is not a Fernet key") as excinfo:
        call_command("rotate_encryption_keys", stdout=io.StringIO())
    assert "not-a-fernet-key-but-a-secret" not in str(excinfo.value)


@pytest.mark.django_db
def test_rotate_draws_a_progress_bar_on_a_terminal_only(settings):
    linked_account()
    piped = io.StringIO()
    call_command("rotate_encryption_keys", stdout=piped)
    assert "\r" not in piped.getvalue()

    terminal = Terminal()
    call_command("rotate_encryption_keys", "--batch-size", "1", stdout=terminal)
    assert "[##############################] 1/1" in terminal.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_tokens_and_its_reversal_decrypts_them():
    user = User.objects.create_user(email="ada@example.com")
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    before = [("auth_app", "0002_rate_limits")]
    executor.migrate(before)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                'INSERT INTO "auth"."accounts" (id, user_id, provider_id, account_id,'
                " access_token, refresh_token, id_token, scope, created_at, updated_at)"
                " VALUES ('acc-1', %s, 'github', '42', %s, %s, %s, '', now(), now())",
                [user.pk, *TOKENS.values()],
            )

        executor = MigrationExecutor(connection)
        executor.migrate([("auth_app", "0003_encrypt_account_tokens")])
        stored = raw_tokens("acc-1")
        assert not set(stored.values()) & set(TOKENS.values())
        # Only the columns that exist at 0003 (later migrations add more).
        account = Account.objects.only(*TOKENS).get(pk="acc-1")
        assert {column: getattr(account, column) for column in TOKENS} == TOKENS

        executor = MigrationExecutor(connection)
        executor.migrate(before)
        assert raw_tokens("acc-1") == TOKENS
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(leaves)


def test_the_development_key_is_derived_from_secret_key():
    assert development_key("one secret") == development_key("one secret")
    assert development_key("one secret") != development_key("another secret")
    Fernet(development_key("one secret"))  # a valid key


def _load_production_settings(**environ) -> subprocess.CompletedProcess:
    # A clean environment: only what the test passes, plus what Python needs to run.
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "sv_sdk.settings.production"}
    env.update(environ)
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.DEBUG)"
    )
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


PRODUCTION_ENV = {
    "SECRET_KEY": "production-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DATABASE_URL": "postgres://app@db.example.com/sv_sdk",
    "SV_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
}


@pytest.mark.parametrize("missing", ["SECRET_KEY", "SV_ENCRYPTION_KEYS", "DATABASE_URL"])
def test_production_settings_refuse_to_start_without_a_required_secret(missing):
    environ = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _load_production_settings(**environ)
    assert result.returncode != 0
    assert f"{missing} must be set in production" in result.stderr
    for value in environ.values():
        assert value not in result.stderr


def test_production_settings_start_with_secure_cookies_and_hsts():
    result = _load_production_settings(**PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "31536000", "False"]


def test_a_malformed_production_key_fails_the_system_checks_without_being_printed():
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "sv_sdk.settings.production",
        **PRODUCTION_ENV,
        "SV_ENCRYPTION_KEYS": f"{Fernet.generate_key().decode()},short-secret-key",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "key 2 of 2 is not a Fernet key" in result.stderr
    assert "short-secret-key" not in result.stderr + result.stdout
