"""Identities brought from another system: users with their passwords, linked accounts,
live sessions and pending tokens, built by this app's rules and written through a Batch."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils import timezone

from sv_sdk.db.batch import Batch
from sv_sdk.net import clean_ip

from .mfa import mfa_enroll_deadline
from .models import Account, Session, User, Verification
from .services import user_build
from .tokens import token_hash


@dataclass
class AccountIn:
    """A linked provider account; its tokens in plaintext (encrypted when written)."""

    provider_id: str
    account_id: str
    access_token: str = ""
    refresh_token: str = ""
    id_token: str = ""
    access_token_expires_at: datetime | None = None
    refresh_token_expires_at: datetime | None = None
    scope: str = ""
    created_at: datetime | None = None


@dataclass
class SessionIn:
    """A session and its plaintext token (hashed when written)."""

    token: str
    expires_at: datetime
    created_at: datetime
    last_seen_at: datetime
    ip_address: str | None = None
    user_agent: str = ""


@dataclass
class TokenIn:
    """A single-use token for `purpose` (services.PASSWORD_RESET, ...), in plaintext."""

    purpose: str
    token: str
    expires_at: datetime
    created_at: datetime


@dataclass
class UserIn:
    """A user as another system holds them. `password` is a Django-encoded hash or None."""

    id: str
    email: str
    name: str = ""
    image: str = ""
    email_verified: bool = False
    password: str | None = None
    created_at: datetime | None = None
    banned_until: datetime | None = None
    accounts: list[AccountIn] = field(default_factory=list)
    sessions: list[SessionIn] = field(default_factory=list)
    tokens: list[TokenIn] = field(default_factory=list)


IMAGE_MAX_LENGTH = User._meta.get_field("image").max_length
_image_url = URLValidator(schemes=["http", "https"])


def image_importable(image: str) -> bool:
    """Whether `image` can be kept: an http(s) URL short enough for the column."""
    if not image or len(image) > IMAGE_MAX_LENGTH:
        return False
    try:
        _image_url(image)
    except ValidationError:
        return False
    return True


def user_build_imported(record: UserIn) -> User:
    """A new, unsaved user from `record`: its id and dates kept, email and name checked as a
    sign-up's are (ValidationFailed), its password hash kept as it is (no hash: unusable)."""
    user = user_build(email=record.email, name=record.name)
    user.id = record.id
    user.email_verified = record.email_verified
    user.image = record.image if image_importable(record.image) else ""
    if record.password:
        user.password = record.password
    if record.created_at is not None:
        user.created_at = record.created_at
    user.banned_until = record.banned_until
    return user


def session_expiry(created_at: datetime, expires_at: datetime) -> datetime:
    """When an imported session ends: its own expiry, never past SV_SESSION_MAX_AGE from its
    start (the limit sliding keeps for sessions opened here)."""
    return min(expires_at, created_at + timedelta(seconds=settings.SV_SESSION_MAX_AGE))


def credentials_import(*, user: User, record: UserIn, batch: Batch) -> dict[str, int]:
    """Queue `record`'s accounts, live sessions and unexpired tokens of `user` (already
    written) into `batch`; return how many of each, and how many were left out (expired,
    or a token replaced by a newer one of the same purpose)."""
    now = timezone.now()
    accounts = [
        Account(
            user=user,
            provider_id=a.provider_id,
            account_id=a.account_id,
            access_token=a.access_token or "",
            refresh_token=a.refresh_token or "",
            id_token=a.id_token or "",
            access_token_expires_at=a.access_token_expires_at,
            refresh_token_expires_at=a.refresh_token_expires_at,
            scope=a.scope or "",
            created_at=a.created_at or now,
        )
        for a in record.accounts
    ]
    live = [
        s for s in record.sessions if session_expiry(s.created_at, s.expires_at) > now and s.token
    ]
    # Who must enrol a second factor is decided by their roles, as for a session opened here.
    enroll_by = mfa_enroll_deadline(user) if live else None
    sessions = [
        Session(
            user=user,
            token_hash=token_hash(s.token),
            expires_at=session_expiry(s.created_at, s.expires_at),
            created_at=s.created_at,
            last_seen_at=s.last_seen_at,
            ip_address=clean_ip(s.ip_address),
            user_agent=(s.user_agent or "")[:1000],
            # How they signed in is not known: a sensitive action asks them again.
            amr=[],
            authenticated_at=s.created_at,
            mfa_enroll_by=enroll_by,
        )
        for s in live
    ]
    # One pending token per purpose, as verification_create keeps it: the newest.
    newest: dict[str, TokenIn] = {}
    for t in record.tokens:
        if t.expires_at > now and t.token:
            if t.purpose not in newest or t.created_at > newest[t.purpose].created_at:
                newest[t.purpose] = t
    pending = list(newest.values())
    tokens = [
        Verification(
            identifier=f"{t.purpose}:{user.pk}",
            user=user,
            value_hash=token_hash(t.token),
            expires_at=t.expires_at,
            created_at=t.created_at,
        )
        for t in pending
    ]
    for rows in (accounts, sessions, tokens):
        if rows:
            batch.insert(*rows)
    return {
        "accounts": len(accounts),
        "sessions": len(sessions),
        "sessions_expired": len(record.sessions) - len(sessions),
        "tokens": len(tokens),
        "tokens_skipped": len(record.tokens) - len(tokens),
    }
