"""Issue 15, class 8: deployment hardening.

The Compose app container carried the owner's DATABASE_MIGRATE_URL, the owner was a
PostgreSQL superuser, and the production settings accepted the Compose file's example
SECRET_KEY and Fernet key. Now only the one-shot migrate service has the owner's URL, the
owner is never a superuser (scripts/init-db.sql, setup_db_roles), and production refuses every
secret this repository publishes.
"""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from sv_sdk.env import PUBLISHED_SECRETS
from tests.test_db_roles import (
    ROLE_PASSWORDS,
    connect,
    drop_roles,
    pg_binary,
    role_set,
    server_params,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


# docker-compose.yml (no Compose engine here: its structure is checked as YAML)


def environment(service: str) -> dict[str, str]:
    return COMPOSE["services"][service].get("environment", {})


def test_class8_only_the_one_shot_migrate_service_has_the_owners_url():
    holders = {
        name
        for name in COMPOSE["services"]
        if any("sv_owner" in str(value) for value in environment(name).values())
        or "DATABASE_MIGRATE_URL" in environment(name)
    }

    assert holders == {"migrate"}
    assert COMPOSE["services"]["migrate"]["restart"] == "no"
    for service in ("app", "worker"):
        assert environment(service)["DATABASE_URL"].startswith("postgres://sv_app:")
        assert "DATABASE_MIGRATE_URL" not in environment(service)


def test_class8_the_owner_is_not_the_images_superuser():
    assert environment("db")["POSTGRES_USER"] != "sv_owner"
    assert "SV_OWNER_PASSWORD" in environment("db")


def test_class8_compose_publishes_no_secret_key_or_fernet_key():
    for service in ("migrate", "app", "worker"):
        env = environment(service)
        for name in ("SECRET_KEY", "SV_ENCRYPTION_KEYS"):
            # ${NAME:?message}: Compose stops when it is unset; there is no default.
            assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", env[name]), env[name]


# Published secrets


def _example_files() -> list[Path]:
    return [
        ROOT / "docker-compose.yml",
        ROOT / "Dockerfile",
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        *sorted(ROOT.glob(".env*")),
    ]


_ASSIGNED = re.compile(
    r"(?:SECRET_KEY|SV_ENCRYPTION_KEYS)(?:\s*[:=]\s*|:-)[\"']?([A-Za-z0-9_\-=.,+/]{8,})"
)
_FERNET = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{43}=")


def test_class8_every_secret_value_in_the_example_files_is_a_published_one():
    found = set()
    for path in _example_files():
        text = path.read_text()
        found |= {value for value in _ASSIGNED.findall(text) if not value.startswith("$")}
        found |= set(_FERNET.findall(text))

    assert found <= PUBLISHED_SECRETS, found - PUBLISHED_SECRETS


def production(**environ) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "sv_sdk.settings.production",
        "DATABASE_URL": "postgres://app@db.example.com/sv_sdk",
        "SECRET_KEY": "class8-own-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "SV_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        **environ,
    }
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_class8_production_starts_with_secrets_of_its_own():
    result = production()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "key",
    sorted(
        [
            *(value for value in PUBLISHED_SECRETS if not value.endswith("=")),
            "django-insecure-0123456789abcdefghijklmnopqrstuvwxyz0123456789",
        ]
    ),
)
def test_class8_production_refuses_a_published_secret_key(key):
    result = production(SECRET_KEY=key)

    assert result.returncode != 0
    assert "SECRET_KEY is a published example value" in result.stderr
    assert key not in result.stderr


@pytest.mark.parametrize("key", sorted(v for v in PUBLISHED_SECRETS if v.endswith("=")))
def test_class8_production_refuses_a_published_fernet_key_in_any_position(key):
    own = Fernet.generate_key().decode()
    for keys in (key, f"{own},{key}"):
        result = production(SV_ENCRYPTION_KEYS=keys)

        assert result.returncode != 0
        assert "SV_ENCRYPTION_KEYS holds a published example key" in result.stderr
        assert key not in result.stderr


# The owner role is never a superuser


def _make_superuser(name: str) -> None:
    with connect(autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{name}" LOGIN SUPERUSER CREATEROLE CREATEDB')


def _attributes(name: str) -> tuple[bool, bool, bool]:
    with connect() as conn:
        return conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s",
            [name],
        ).fetchone()


@pytest.fixture
def fresh_roles(django_db_setup, django_db_blocker):
    roles = role_set("_class8")
    with django_db_blocker.unblock():
        drop_roles(roles)
    yield roles
    with django_db_blocker.unblock():
        drop_roles(roles)


def _init_db_sql(roles, dbname: str, *, as_role: str | None = None):
    params = server_params(dbname)
    return subprocess.run(  # noqa: S603
        [
            pg_binary("psql"),
            *("--no-psqlrc", "--quiet", "-h", str(params["host"])),
            *("-p", str(params["port"] or 5432), "-U", as_role or params["user"], "-d", dbname),
            *("-v", f"owner_role={roles.owner}", "-v", f"app_role={roles.app}"),
            *("-v", f"readonly_role={roles.readonly}", "-v", f"auditor_role={roles.auditor}"),
            *("-f", str(ROOT / "scripts" / "init-db.sql")),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **ROLE_PASSWORDS},
        check=False,
    )


@pytest.fixture
def scratch_database(django_db_setup, django_db_blocker):
    name = f"{connection.settings_dict['NAME']}_class8"
    with django_db_blocker.unblock():
        with connect(autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        yield name
        with connect(autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_class8_init_db_sql_creates_the_owner_without_superuser(fresh_roles, scratch_database):
    result = _init_db_sql(fresh_roles, scratch_database)

    assert result.returncode == 0, result.stderr
    assert _attributes(fresh_roles.owner) == (False, False, False)


def test_class8_init_db_sql_demotes_an_owner_that_is_a_superuser(fresh_roles, scratch_database):
    _make_superuser(fresh_roles.owner)

    refused = _init_db_sql(fresh_roles, scratch_database, as_role=fresh_roles.owner)
    result = _init_db_sql(fresh_roles, scratch_database)

    assert refused.returncode != 0 and "must not be one" in refused.stderr
    assert result.returncode == 0, result.stderr
    assert _attributes(fresh_roles.owner) == (False, False, False)


@pytest.mark.django_db(transaction=True)  # committed, so the fixture can drop the roles
def test_class8_setup_db_roles_demotes_an_owner_that_is_a_superuser(fresh_roles, monkeypatch):
    _make_superuser(fresh_roles.owner)
    for variable, password in ROLE_PASSWORDS.items():
        monkeypatch.setenv(variable, password)
    out = io.StringIO()

    call_command("setup_db_roles", *fresh_roles.options(), stdout=out)

    assert _attributes(fresh_roles.owner) == (False, False, False)
    assert "superuser, createrole and createdb taken away" in out.getvalue()


@pytest.mark.django_db
def test_class8_setup_db_roles_refuses_to_demote_the_role_it_connects_as(monkeypatch):
    current = connection.settings_dict["USER"]
    with pytest.raises(CommandError, match="is the role connected"):
        call_command(
            "setup_db_roles",
            *("--owner-role", current, "--app-role", "class8_app_unused"),
            *("--readonly-role", "class8_ro_unused", "--auditor-role", "class8_au_unused"),
            stdout=io.StringIO(),
        )
