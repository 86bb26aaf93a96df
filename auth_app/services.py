"""Writes to the identity schema."""

import re
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit_app.services import audit_record
from sv_sdk import metrics
from sv_sdk.db.batch import Batch, delete_cascading
from sv_sdk.db.pool import connection_release
from sv_sdk.errors import ValidationFailed

from .addresses import email_key, email_normalize
from .errors import AccountDisabled, EmailTaken, InvalidCredentials, InvalidPassword, TokenInvalid
from .mfa import SECOND_FACTORS, mfa_enroll_deadline
from .models import PasskeyChallenge, Session, User, Verification
from .ratelimit import lockout_check, lockout_clear, lockout_record_failure
from .selectors import user_can_sign_in, user_get_by_email, verifications_usable
from .tokens import token_generate, token_hash

_UNUSED_VERIFICATIONS_DELETE = (
    f"DELETE FROM {Verification._meta.db_table} WHERE identifier = %s AND consumed_at IS NULL"  # noqa: S608
)

EMAIL_VERIFICATION = "email-verification"
PASSWORD_RESET = "password-reset"  # noqa: S105 (a purpose, not a secret)


# Bidirectional overrides and isolates: they make a name display as other text.
# What a name may not hold, as a regular-expression class: control characters (Unicode
# category Cc), line and paragraph separators (Zl, Zp) and text-direction overrides.
# The API's schema states the same class (auth_app.api.serializers.UserNameField).
NAME_FORBIDDEN = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069"
_NAME_FORBIDDEN = re.compile(f"[{NAME_FORBIDDEN}]")


def user_name_clean(name: str) -> str:
    """`name` stripped; ValidationFailed unless it is one line of visible text, short enough.

    A name is shown in the admin, in lists and in email greetings: it holds no
    line break, control character or text-direction override (issue 15, class 7).
    """
    name = (name or "").strip()
    if _NAME_FORBIDDEN.search(name):
        raise ValidationFailed(
            errors={"name": ["A name is one line, without control or direction characters."]}
        )
    limit = User._meta.get_field("name").max_length
    if len(name) > limit:
        raise ValidationFailed(errors={"name": [f"A name has at most {limit} characters."]})
    return name


def user_build(
    *,
    email: str,
    password: str | None = None,
    name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
    validate_password: bool = True,
) -> User:
    """A new, unsaved user: the email normalised and checked, the password checked and hashed.

    A missing password gives an unusable one (external-only users). Call it before opening
    the transaction that saves the user: the hash takes tens of milliseconds of CPU, and
    no connection or transaction is held while it runs (docs/decisions.md).
    """
    email = email_normalize(email)
    user = User(
        email=email,
        email_key=email_key(email),
        name=user_name_clean(name),
        is_staff=is_staff or is_superuser,
        is_superuser=is_superuser,
    )
    if password is None:
        user.set_unusable_password()
    else:
        user.password = (
            password_prepare(user=user, password=password)
            if validate_password
            else _password_hash(password)
        )
    return user


def raise_if_email_taken(exc: IntegrityError) -> None:
    """Turn the violation of the unique email key into EmailTaken."""
    if "users_email_key_uniq" in str(exc):
        raise EmailTaken() from None


def verification_create(
    *, user: User, purpose: str, ttl: timedelta, batch: Batch | None = None
) -> tuple[Verification, str]:
    """Issue a single-use token for `purpose`, replacing any unused one; return (row, token).

    With `batch`, the row is written when the batch runs.
    """
    token = token_generate()
    verification = Verification(
        identifier=f"{purpose}:{user.pk}",
        user=user,
        value_hash=token_hash(token),
        expires_at=timezone.now() + ttl,
    )
    own = batch is None
    if own:
        batch = Batch()
    # A new token makes the previous one of the same purpose useless.
    batch.add(_UNUSED_VERIFICATIONS_DELETE, [verification.identifier])
    batch.insert(verification)
    if own:
        batch.run()
    return verification, token


def verification_consume(*, token: str, purpose: str, repeatable: bool = False) -> Verification:
    """Use a token once: mark it consumed, or raise TokenInvalid (unknown, expired, used, other
    purpose).

    One conditional UPDATE, so two concurrent uses of one token cannot both succeed.
    With `repeatable`, a used token is returned again (still marked with its first use)
    until it expires; the caller decides what a repeat may do (docs/better-auth.md).
    """
    now = timezone.now()
    verification = (
        verifications_usable(token=token, purpose=purpose, repeatable=repeatable)
        .select_for_update(of=("self",))
        .select_related("user")
        .first()
    )
    if verification is None or verification.user is None:
        raise TokenInvalid()
    if verification.consumed_at is None:
        Verification.objects.filter(pk=verification.pk).update(consumed_at=now)
        verification.consumed_at = now
    return verification


def password_validate(*, password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationFailed(errors={"password": list(exc.messages)}) from None


def password_prepare(*, user: User, password: str) -> str:
    """Validate `user`'s new `password` and return its hash, for user_password_set.

    Called before the change's transaction opens: the hash is tens of milliseconds of
    CPU, and meanwhile neither a row lock nor the request's connection is held (the
    connection goes back to its pool until the next query). Raises ValidationFailed.
    """
    password_validate(password=password, user=user)
    return _password_hash(password)


def _password_hash(password: str) -> str:
    # No connection held while the password is hashed (given back to its pool).
    connection_release()
    return make_password(password)


def user_password_set(
    *, user: User, password_hash: str, event_type: str, actor: User | None = None
) -> None:
    """Store a new password hash (from password_prepare) and record `event_type`
    (password changed or reset).

    Every unused reset token of the user ends: a link mailed before the change must
    not undo it.
    """
    with transaction.atomic():
        user.password = password_hash
        user.save(update_fields=["password", "updated_at"])
        Verification.objects.filter(
            identifier=f"{PASSWORD_RESET}:{user.pk}", consumed_at__isnull=True
        ).delete()
        audit_record(
            event_type=event_type,
            actor=actor or user,
            user=user,
            target=user,
        )


def user_email_verify(*, user: User) -> User:
    with transaction.atomic():
        user.email_verified = True
        user.save(update_fields=["email_verified", "updated_at"])
        audit_record(
            event_type="user.email_verified",
            user=user,
            target=user,
            metadata={"email": user.email},
        )
    return user


def user_profile_update(*, user: User, actor: User, **changes) -> User:
    """Change fields of a user (their own name and image, or an administrator's edit of
    account flags) and record user.updated with the names of the fields that changed.

    A new email address must be free (EmailTaken) and is unverified until its
    owner confirms it, whatever `email_verified` says.
    """
    if "email" in changes:
        changes["email"] = email_normalize(changes["email"])
        if changes["email"] != user.email:
            changes["email_verified"] = False
    if "name" in changes:
        changes["name"] = user_name_clean(changes["name"])
    changed = sorted(field for field, value in changes.items() if getattr(user, field) != value)
    if not changed:
        return user
    with transaction.atomic():
        for field in changed:
            setattr(user, field, changes[field])
        try:
            with transaction.atomic():
                user.save(update_fields=[*changed, "updated_at"])
        except IntegrityError as exc:
            raise_if_email_taken(exc)
            raise
        audit_record(
            event_type="user.updated",
            actor=actor,
            user=user,
            target=user,
            metadata={"fields": changed},
        )
    return user


def user_delete(*, user: User) -> None:
    """Delete a user; sessions, accounts, tokens, assignments and preferences cascade.

    The cascade's statements go to the server in one round trip.
    """
    delete_cascading(user)


def session_create(
    *,
    user: User,
    ip_address: str | None = None,
    user_agent: str = "",
    amr: Iterable[str] = ("pwd",),
) -> tuple[Session, str]:
    """Open a session for `user`; return it and its token (the only time the token exists).

    `amr` says how the user proved who they are. A user who must hold a second factor
    and has none gets a session limited to enrolment past the grace period.
    """
    token = token_generate()
    now = timezone.now()
    amr = sorted(set(amr))
    session = Session.objects.create(
        user=user,
        token_hash=token_hash(token),
        expires_at=now + timedelta(seconds=settings.SV_SESSION_TTL),
        last_seen_at=now,
        ip_address=ip_address,
        user_agent=(user_agent or "")[:1000],
        amr=amr,
        authenticated_at=now,
        mfa_enroll_by=None if set(amr) & set(SECOND_FACTORS) else mfa_enroll_deadline(user),
    )
    metrics.count_on_commit(metrics.SESSIONS_CREATED)
    return session, token


def session_revoke(*, session: Session, actor: User | None, reason: str) -> None:
    """End one session at once and record session.revoked (or auth.sign_out)."""
    with transaction.atomic():
        Session.objects.filter(pk=session.pk).delete()
        audit_record(
            event_type="auth.sign_out" if reason == "sign_out" else "session.revoked",
            actor=actor,
            user_id=session.user_id,
            target=session,
            metadata={"reason": reason},
        )


def sessions_revoke_for_user(
    *, user: User, actor: User | None, reason: str, keep: Session | None = None
) -> int:
    """End every session of `user` (but `keep`); return how many ended."""
    with transaction.atomic():
        sessions = Session.objects.filter(user=user)
        if keep is not None:
            sessions = sessions.exclude(pk=keep.pk)
        count, _ = sessions.delete()
        if count:
            audit_record(
                event_type="session.revoked",
                actor=actor,
                user=user,
                target=user,
                metadata={"reason": reason, "count": count},
            )
    return count


def credentials_check(
    *, email: str, password: str, ip_address: str | None, user_agent: str
) -> User:
    """The password half of sign-in, shared by the API's sign-in and the admin's login.

    Locked (IP, email) pairs are refused; an unknown email costs a password hash
    too, so it looks and takes like a wrong password; failures are audited and
    counted towards the lockout; a disabled account is refused after a correct
    password. Returns the user; opens no session.
    """
    user = user_get_by_email(email=email)
    lockout_check(ip=ip_address, email=email, user=user)
    # No connection held while the password is hashed (a rehash saves after it).
    connection_release()
    if user is not None and user.has_usable_password():
        # check_password also rehashes when the hasher's parameters changed.
        valid = user.check_password(password)
    else:
        User().set_password(password)  # the same work as a real check
        valid = False
    if not valid:
        with transaction.atomic():
            audit_record(
                event_type="auth.sign_in_failed",
                user=user,
                target=user,
                metadata={"email": email, "reason": "wrong_password" if user else "unknown_email"},
                ip_address=ip_address,
                user_agent=user_agent,
            )
        lockout_record_failure(ip=ip_address, email=email, user=user)
        raise InvalidCredentials()
    if not user_can_sign_in(user):
        raise AccountDisabled()
    return user


def session_sign_in(
    *, user: User, amr: Iterable[str], email: str, ip_address: str | None, user_agent: str
) -> tuple[Session, str]:
    """The end of every sign-in: the session, last_login, lockout cleared, auth.sign_in."""
    with transaction.atomic():
        session, token = session_create(
            user=user, ip_address=ip_address, user_agent=user_agent, amr=amr
        )
        user.last_login = timezone.now()
        user.save(update_fields=["last_login"])
        sign_in_succeeded(
            user=user, email=email, ip_address=ip_address, user_agent=user_agent, session=session
        )
    return session, token


def sign_in_succeeded(
    *,
    user: User,
    email: str,
    ip_address: str | None,
    user_agent: str,
    session: Session | None = None,
    provider: str | None = None,
) -> None:
    """What every sign-in does once the password (or a `provider`) is right: clear the
    earlier failures of (IP, email) and record auth.sign_in.

    The API's sign_in passes the session it opened; Django's login (the admin,
    through backends.EmailBackend) opens its own afterwards, so the event then
    names the user and says so.
    """
    with transaction.atomic():
        lockout_clear(ip=ip_address, user=user)
        audit_record(
            event_type="auth.sign_in",
            actor=user,
            user=user,
            target=session or user,
            metadata=(
                {"method": "oauth", "provider": provider}
                if provider
                else ({} if session else {"via": "django_login"})
            ),
            ip_address=ip_address,
            user_agent=user_agent,
        )


def password_check(*, user: User, password: str, ip_address: str | None, user_agent: str) -> None:
    """Check a signed-in user's current password, under the sign-in lockout.

    Refused while sign-ins of this user from this address are locked; a wrong
    password is audited (user.password_check_failed) and counts towards that lock.
    """
    lockout_check(ip=ip_address, email=user.email, user=user)
    # No connection held while the password is hashed (a rehash saves after it).
    connection_release()
    if user.check_password(password):
        return
    with transaction.atomic():
        audit_record(
            event_type="user.password_check_failed",
            actor=user,
            user=user,
            target=user,
            metadata={"reason": "wrong_current_password"},
            ip_address=ip_address,
            user_agent=user_agent,
        )
        lockout_record_failure(ip=ip_address, email=user.email, user=user)
    raise InvalidPassword(errors={"current_password": ["The current password is wrong."]})


def sessions_prune() -> int:
    """Delete expired sessions; return how many."""
    deleted, _ = Session.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


def verifications_prune() -> int:
    """Delete tokens and passkey challenges that are used or expired; return how many."""
    from django.db.models import Q

    # A used email-verification token answers again until it expires (a mail scanner's
    # prefetch must not spend the user's click), so it stays until then.
    used = Q(consumed_at__isnull=False) & ~Q(identifier__startswith=f"{EMAIL_VERIFICATION}:")
    done = used | Q(expires_at__lte=timezone.now())
    deleted, _ = Verification.objects.filter(done).delete()
    challenges, _ = PasskeyChallenge.objects.filter(
        Q(consumed_at__isnull=False) | Q(expires_at__lte=timezone.now())
    ).delete()
    return deleted + challenges


def _banned_until_set(*, user: User, until, actor: User | None) -> None:
    """Store the end of `user`'s ban (None: no ban) and audit it as user.updated, in the
    caller's transaction."""
    user.banned_until = until
    user.save(update_fields=["banned_until", "updated_at"])
    metadata = {"fields": ["banned_until"], "banned_until": until and until.isoformat()}
    audit_record(event_type="user.updated", actor=actor, user=user, target=user, metadata=metadata)


def user_ban(*, user: User, until, actor: User | None) -> int:
    """Ban `user` until `until` and end every session of theirs; return how many ended."""
    with transaction.atomic():
        _banned_until_set(user=user, until=until, actor=actor)
        return sessions_revoke_for_user(user=user, actor=actor, reason="banned")


def user_unban(*, user: User, actor: User | None) -> None:
    """Lift a ban at once (nothing happens for a user who is not banned)."""
    if user.banned_until is None:
        return
    with transaction.atomic():
        _banned_until_set(user=user, until=None, actor=actor)
