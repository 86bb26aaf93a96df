"""Reading a better-auth PostgreSQL database for import_better_auth: its schema, a plan of who
can move (and who conflicts), and the users of the plan with their credentials."""

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from auth_app.hashers import better_auth_password
from auth_app.imports import AccountIn, SessionIn, TokenIn, UserIn, user_build_imported
from auth_app.models import Account, User
from auth_app.services import PASSWORD_RESET
from sv_sdk.errors import ValidationFailed
from sv_sdk.logs import redact

SOURCE = "better-auth"
# The provider id of better-auth's email-and-password account (its password column).
CREDENTIAL = "credential"
# better-auth's password-reset rows: identifier "reset-password:<token>", value the user id.
RESET_PREFIX = "reset-password:"

# The columns the import reads, per table (better-auth 1.x, camelCase).
COLUMNS = {
    "user": ("id", "email", "name", "emailVerified", "image", "createdAt"),
    "session": ("token", "userId", "expiresAt", "createdAt", "updatedAt", "ipAddress", "userAgent"),
    "account": (
        "userId",
        "providerId",
        "accountId",
        "accessToken",
        "refreshToken",
        "idToken",
        "accessTokenExpiresAt",
        "refreshTokenExpiresAt",
        "scope",
        "password",
        "createdAt",
        "updatedAt",
    ),
    "verification": ("identifier", "value", "expiresAt", "createdAt"),
}
# Tables may be named as better-auth names them, or in the plural (its usePlural option).
NAMINGS = (
    {name: name for name in COLUMNS},
    {name: f"{name}s" for name in COLUMNS},
)
# Kept ids must fit sv_sdk's text keys and stay URL-safe.
_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
# Far enough: better-auth's admin plugin bans without an end.
BANNED_FOREVER = datetime(9999, 12, 31, tzinfo=UTC)

CONFLICTS = {
    "invalid_id": "its id does not fit sv_sdk (1 to 36 letters, digits, - or _)",
    "invalid_email": "its email is not an address sv_sdk accepts",
    "invalid_name": "its name is not one line of at most 200 characters",
    "duplicate_email": "another user of the source has the same email, ignoring case",
    "email_taken": "a different sv_sdk user already has this email, ignoring case",
    "no_credential": "it has neither a password nor a linked provider account",
    "unreadable_password": "its password hash is not better-auth's scrypt salt:key",
    "account_taken": "one of its provider accounts belongs to another user",
}


class SourceError(Exception):
    """The source cannot be read: a bad URL, no connection, or not a better-auth schema."""


@dataclass
class Conflict:
    kind: str
    user_id: str
    email: str


@dataclass
class Plan:
    """Who moves: ids in creation order, those already here, and the conflicts."""

    total: int = 0
    to_import: list[str] = field(default_factory=list)
    already_imported: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    # What the source holds in all (the report's counts).
    source_counts: dict[str, int] = field(default_factory=dict)
    other_roles: int = 0


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


class BetterAuthSource:
    """One read-only, repeatable-read connection to a better-auth database: every read of one
    run sees the same snapshot."""

    def __init__(self, url: str, schema: str = "public"):
        if urlsplit(url).scheme not in ("postgres", "postgresql"):
            raise SourceError(
                "the better-auth DATABASE_URL must be a postgres:// or postgresql:// URL"
            )
        try:
            self.connection = psycopg.connect(url, connect_timeout=10)
        except psycopg.Error as exc:
            reason = (str(exc).strip().splitlines() or ["unknown error"])[0]
            raise SourceError(f"cannot connect to {redact(url)}: {reason}") from None
        self.connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self.connection.read_only = True
        self.schema = schema
        try:
            self.tables, self.optional = self._tables()
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "BetterAuthSource":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _tables(self) -> tuple[dict[str, sql.Identifier], set[str]]:
        rows = self.connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = %s",
            [self.schema],
        ).fetchall()
        found = defaultdict(set)
        for table, column in rows:
            found[table].add(column)
        for naming in NAMINGS:
            if all(name in found for name in naming.values()):
                break
        else:
            raise SourceError(
                f'not a better-auth database: schema "{self.schema}" has no tables'
                ' "user", "session", "account" and "verification" (nor their plurals)'
                " that this role can see"
            )
        for name, columns in COLUMNS.items():
            missing = [c for c in columns if c not in found[naming[name]]]
            if missing:
                raise SourceError(
                    f'not a better-auth schema: table "{naming[name]}" has no column'
                    f" {', '.join(repr(c) for c in missing)}"
                )
        tables = {name: sql.Identifier(self.schema, table) for name, table in naming.items()}
        # The admin plugin's columns, read when present.
        optional = {"banned", "banExpires", "role"} & found[naming["user"]]
        return tables, optional

    def _query(self, text: str, params=(), **fragments: sql.Composable) -> list[tuple]:
        """Rows of `text`, whose {user}, {session}, {account} and {verification} name the
        source's tables (and other {names}, `fragments`)."""
        query = sql.SQL(text).format(**self.tables, **fragments)
        return self.connection.execute(query, params).fetchall()

    # The plan --------------------------------------------------------------------------------

    def plan(self) -> Plan:
        """Who can be imported, who is already, who conflicts (see CONFLICTS), and counts."""
        rows = self._query(
            'SELECT u."id", u."email", u."name", c."password", {role}'
            ' FROM {user} u LEFT JOIN LATERAL (SELECT a."password" FROM {account} a'
            ' WHERE a."userId" = u."id" AND a."providerId" = %s AND a."password" IS NOT NULL'
            ' ORDER BY a."updatedAt" DESC LIMIT 1) c ON true'
            ' ORDER BY u."createdAt", u."id"',
            [CREDENTIAL],
            role=sql.SQL('u."role"' if "role" in self.optional else "NULL"),
        )
        providers = defaultdict(list)
        for user_id, provider_id, account_id in self._query(
            'SELECT "userId", "providerId", "accountId" FROM {account} WHERE "providerId" <> %s',
            [CREDENTIAL],
        ):
            providers[user_id].append((provider_id, account_id))

        plan = Plan(total=len(rows), source_counts=self._counts())
        plan.other_roles = sum(1 for row in rows if row[4] not in (None, "", "user"))
        ids = [row[0] for row in rows]
        existing = _existing_ids(ids)
        keys: dict[str, str] = {}
        reasons: dict[str, str] = {}
        for user_id, email, name, password, _role in rows:
            if user_id in existing:
                continue
            if not _ID.fullmatch(user_id):
                reasons[user_id] = "invalid_id"
                continue
            try:
                keys[user_id] = user_build_imported(
                    UserIn(id=user_id, email=email, name=name or "")
                ).email_key
            except ValidationFailed as exc:
                field_name = next(iter(exc.errors), "email")
                reasons[user_id] = f"invalid_{field_name}"
                continue
            if password is None and not providers[user_id]:
                reasons[user_id] = "no_credential"
            elif password is not None and better_auth_password(password) is None:
                reasons[user_id] = "unreadable_password"

        # Emails compared by sv_sdk's one rule (addresses.email_key), in the source and here.
        by_key = Counter(keys.values())
        taken = _taken_keys(list(keys.values()))
        for user_id, key in keys.items():
            if by_key[key] > 1:
                reasons.setdefault(user_id, "duplicate_email")
            elif key in taken:
                reasons.setdefault(user_id, "email_taken")

        # A provider account belongs to one user: here, and in the source.
        owners = defaultdict(set)
        for user_id, pairs in providers.items():
            for pair in pairs:
                owners[pair].add(user_id)
        linked = _linked_accounts(list(owners))
        for pair, users in owners.items():
            elsewhere = linked.get(pair)
            for user_id in users:
                if user_id in existing:
                    continue
                if len(users) > 1 or (elsewhere is not None and elsewhere != user_id):
                    reasons.setdefault(user_id, "account_taken")

        emails = {row[0]: row[1] for row in rows}
        for user_id in ids:
            if user_id in existing:
                plan.already_imported += 1
            elif user_id in reasons:
                plan.conflicts.append(Conflict(reasons[user_id], user_id, emails[user_id]))
            else:
                plan.to_import.append(user_id)
        return plan

    def _counts(self) -> dict[str, int]:
        (counts,) = self._query(
            "SELECT"
            ' (SELECT count(*) FROM {session} WHERE "expiresAt" > now()),'
            ' (SELECT count(*) FROM {session} WHERE "expiresAt" <= now()),'
            ' (SELECT count(*) FROM {account} WHERE "providerId" = %(credential)s'
            ' AND "password" IS NOT NULL),'
            ' (SELECT count(*) FROM {account} WHERE "providerId" <> %(credential)s),'
            ' (SELECT count(*) FROM {verification} WHERE "identifier" LIKE %(reset)s'
            ' AND "expiresAt" > now()),'
            ' (SELECT count(*) FROM {verification} WHERE "identifier" LIKE %(reset)s'
            ' AND "expiresAt" <= now()),'
            ' (SELECT count(*) FROM {verification} WHERE "identifier" NOT LIKE %(reset)s)',
            {"credential": CREDENTIAL, "reset": f"{RESET_PREFIX}%"},
        )
        names = (
            "sessions_live",
            "sessions_expired",
            "passwords",
            "provider_accounts",
            "reset_tokens_pending",
            "reset_tokens_expired",
            "verification_other",
        )
        return dict(zip(names, counts, strict=True))

    # The users -------------------------------------------------------------------------------

    def users(self, ids: list[str]) -> list[UserIn]:
        """The users `ids` (in that order) with their accounts, live sessions and pending
        reset tokens."""
        rows = self._query(
            'SELECT u."id", u."email", u."name", u."image", u."emailVerified", u."createdAt",'
            ' {banned} FROM {user} u WHERE u."id" = ANY(%s)',
            [ids],
            banned=sql.SQL(
                'u."banned", u."banExpires"'
                if {"banned", "banExpires"} <= self.optional
                else "false, NULL"
            ),
        )
        records = {
            row[0]: UserIn(
                id=row[0],
                email=row[1],
                name=row[2] or "",
                image=row[3] or "",
                email_verified=bool(row[4]),
                created_at=_aware(row[5]),
                banned_until=(_aware(row[7]) or BANNED_FOREVER) if row[6] else None,
            )
            for row in rows
        }
        for row in self._query(
            'SELECT "userId", "providerId", "accountId", "accessToken", "refreshToken",'
            ' "idToken", "accessTokenExpiresAt", "refreshTokenExpiresAt", "scope", "password",'
            ' "createdAt" FROM {account} WHERE "userId" = ANY(%s) ORDER BY "updatedAt"',
            [ids],
        ):
            record = records[row[0]]
            if row[1] == CREDENTIAL:
                if row[9]:
                    record.password = better_auth_password(row[9])
                continue
            record.accounts.append(
                AccountIn(
                    provider_id=row[1],
                    account_id=row[2],
                    access_token=row[3] or "",
                    refresh_token=row[4] or "",
                    id_token=row[5] or "",
                    access_token_expires_at=_aware(row[6]),
                    refresh_token_expires_at=_aware(row[7]),
                    scope=row[8] or "",
                    created_at=_aware(row[10]),
                )
            )
        for row in self._query(
            'SELECT "userId", "token", "expiresAt", "createdAt", "updatedAt", "ipAddress",'
            ' "userAgent" FROM {session} WHERE "userId" = ANY(%s) AND "expiresAt" > now()',
            [ids],
        ):
            records[row[0]].sessions.append(
                SessionIn(
                    token=row[1],
                    expires_at=_aware(row[2]),
                    created_at=_aware(row[3]),
                    last_seen_at=_aware(row[4]),
                    ip_address=row[5],
                    user_agent=row[6] or "",
                )
            )
        for row in self._query(
            'SELECT "value", "identifier", "expiresAt", "createdAt" FROM {verification}'
            ' WHERE "identifier" LIKE %s AND "value" = ANY(%s) AND "expiresAt" > now()',
            [f"{RESET_PREFIX}%", ids],
        ):
            records[row[0]].tokens.append(
                TokenIn(
                    purpose=PASSWORD_RESET,
                    token=row[1].removeprefix(RESET_PREFIX),
                    expires_at=_aware(row[2]),
                    created_at=_aware(row[3]),
                )
            )
        return [records[user_id] for user_id in ids if user_id in records]


def _chunks(items: list, size: int = 5000):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing_ids(ids: list[str]) -> set[str]:
    found = set()
    for chunk in _chunks(ids):
        found.update(User.objects.filter(pk__in=chunk).values_list("pk", flat=True))
    return found


def _taken_keys(keys: list[str]) -> set[str]:
    found = set()
    for chunk in _chunks(keys):
        found.update(User.objects.filter(email_key__in=chunk).values_list("email_key", flat=True))
    return found


def _linked_accounts(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Which of these (provider, account id) pairs sv_sdk already links, and to whom."""
    wanted = set(pairs)
    found = {}
    for chunk in _chunks(sorted({account_id for _provider, account_id in pairs})):
        for provider_id, account_id, user_id in Account.objects.filter(
            account_id__in=chunk
        ).values_list("provider_id", "account_id", "user_id"):
            if (provider_id, account_id) in wanted:
                found[(provider_id, account_id)] = user_id
    return found
