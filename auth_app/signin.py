"""Sign-in in steps: the password, then a second factor (TOTP, recovery code or passkey),
or a passkey alone; and the reauthentication that sensitive actions need."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from audit_app.services import audit_record

from . import mfa
from .errors import AccountDisabled, InvalidCode, InvalidCredentials, PasskeyInvalid, TokenInvalid
from .mfa import (
    challenge_failed_record,
    mfa_enabled,
    mfa_methods,
    recovery_code_use,
    recovery_codes_left,
    totp_step_match,
)
from .models import Session, TwoFactor, User, Verification
from .passkeys import passkey_authenticate
from .ratelimit import lockout_check
from .selectors import user_can_sign_in
from .services import credentials_check, password_check, session_sign_in
from .tokens import token_generate, token_hash

# An mfa_token is a Verification whose purpose names the first factor: "mfa-pwd:<user id>".
MFA_TOKEN_PREFIX = "mfa-"  # noqa: S105 (a purpose, not a secret)


# The second factor ---------------------------------------------------------------------------


def _second_factor_use(*, user: User, method: str, code: str, credential: dict | None):
    """Use one second factor of `user` inside the caller's transaction; return its amr name
    ("otp", "webauthn"), None for a wrong code, or raise PasskeyInvalid."""
    if method == "passkey":
        passkey_authenticate(credential=credential or {}, user=user)
        return "webauthn"
    if method == "totp":
        two_factor = (
            TwoFactor.objects.select_for_update()
            .filter(user=user, confirmed_at__isnull=False)
            .first()
        )
        step = totp_step_match(two_factor, code) if two_factor else None
        if step is None:
            return None
        two_factor.last_used_step = step
        two_factor.save(update_fields=["last_used_step", "updated_at"])
        return "otp"
    if method == "recovery_code" and recovery_code_use(user, code):
        audit_record(
            event_type="mfa.recovery_code_used",
            actor=user,
            user=user,
            target=user,
            metadata={"left": recovery_codes_left(user)},
        )
        return "otp"
    return None


def second_factor_check(
    *,
    user: User,
    method: str,
    code: str = "",
    credential: dict | None = None,
    ip_address: str | None,
    user_agent: str,
    then=None,
):
    """Check one second factor of `user` and run `then(factor)` in the same transaction (so
    a code is spent only with what it was for); return (factor, then's result).

    A wrong answer is audited (mfa.challenge_failed), counts towards the same lockout as a
    wrong password, and raises InvalidCode (or PasskeyInvalid); that record outlives the
    refusal.
    """
    lockout_check(ip=ip_address, email=user.email, user=user)
    try:
        with transaction.atomic():
            factor = _second_factor_use(user=user, method=method, code=code, credential=credential)
            if factor is not None:
                return factor, then(factor) if then else None
    except PasskeyInvalid as exc:
        reason, error = exc.code, exc
    else:
        reason, error = "wrong_code", InvalidCode()
    challenge_failed_record(
        user=user, method=method, reason=reason, ip=ip_address, agent=user_agent
    )
    raise error


@dataclass
class SignInStep:
    """What a first factor leads to: a session (and its token), or a second step to take."""

    user: User
    session: Session | None = None
    token: str = ""
    mfa_token: str = ""
    mfa_expires_at: datetime | None = None
    methods: list[str] = field(default_factory=list)


def sign_in_continue(
    *, user: User, first_factor: str, email: str, ip_address: str | None, user_agent: str
) -> SignInStep:
    """After a first factor ("pwd", "oauth"): a session, or an mfa_token if `user` has a
    second factor. The password sign-in calls it; so can an OAuth callback."""
    if not mfa_enabled(user):
        session, token = session_sign_in(
            user=user, amr=[first_factor], email=email, ip_address=ip_address, user_agent=user_agent
        )
        return SignInStep(user=user, session=session, token=token)
    token, expires_at = mfa_token_issue(user=user, first_factor=first_factor)
    return SignInStep(
        user=user, mfa_token=token, mfa_expires_at=expires_at, methods=mfa_methods(user)
    )


def sign_in(*, email: str, password: str, ip_address: str | None, user_agent: str) -> SignInStep:
    """Check the credentials (see credentials_check); open a session, or ask for the second
    factor of a user who has one (see sign_in_continue)."""
    if "@" not in email:
        # Same answer as a wrong password: the shape of the email reveals nothing.
        raise InvalidCredentials()
    user = credentials_check(
        email=email, password=password, ip_address=ip_address, user_agent=user_agent
    )
    return sign_in_continue(
        user=user, first_factor="pwd", email=email, ip_address=ip_address, user_agent=user_agent
    )


def mfa_token_issue(*, user: User, first_factor: str) -> tuple[str, datetime]:
    """A short-lived, single-use token for the second step after `first_factor`; return it and
    its expiry (the token is stored hashed, replacing an unused one)."""
    token = token_generate()
    expires_at = mfa.mfa_now() + timedelta(seconds=settings.SV_MFA_TOKEN_TTL)
    with transaction.atomic():
        identifier = f"{MFA_TOKEN_PREFIX}{first_factor}:{user.pk}"
        Verification.objects.filter(identifier=identifier, consumed_at__isnull=True).delete()
        Verification.objects.create(
            identifier=identifier, user=user, value_hash=token_hash(token), expires_at=expires_at
        )
    return token, expires_at


def _mfa_token_find(token: str) -> Verification:
    verification = (
        Verification.objects.filter(
            value_hash=token_hash(token or ""),
            identifier__startswith=MFA_TOKEN_PREFIX,
            consumed_at__isnull=True,
            expires_at__gt=mfa.mfa_now(),
        )
        .select_related("user")
        .first()
    )
    if verification is None or verification.user is None:
        raise TokenInvalid("The mfa_token is unknown, expired or already used.")
    return verification


def mfa_token_user(*, mfa_token: str) -> User:
    """The user an unused, unexpired mfa_token belongs to (TokenInvalid otherwise)."""
    return _mfa_token_find(mfa_token).user


def mfa_token_use(*, mfa_token: str, ip_address: str | None, user_agent: str, then, **factor):
    """The second step after `mfa_token`: check the factor (`factor`: method, code, credential
    as second_factor_check takes them), use the token once and run `then(user, amr)`, all in
    one transaction; return then's result."""
    verification = _mfa_token_find(mfa_token)
    first = verification.identifier.split(":", 1)[0].removeprefix(MFA_TOKEN_PREFIX)

    def finish(second: str):
        # One conditional UPDATE: of two concurrent uses of the token, one wins.
        if not Verification.objects.filter(pk=verification.pk, consumed_at__isnull=True).update(
            consumed_at=mfa.mfa_now()
        ):
            raise TokenInvalid("The mfa_token is unknown, expired or already used.")
        return then(verification.user, sorted({first, second}))

    _factor, result = second_factor_check(
        user=verification.user, ip_address=ip_address, user_agent=user_agent, then=finish, **factor
    )
    return result


def sign_in_verify(
    *, mfa_token: str, ip_address: str | None, user_agent: str, **factor
) -> tuple[User, Session, str]:
    """The second step of sign-in: check the factor (method, code, credential, as
    second_factor_check takes them), use the mfa_token once, open the session."""

    def open_session(user: User, amr: list[str]):
        session, token = session_sign_in(
            user=user, amr=amr, email=user.email, ip_address=ip_address, user_agent=user_agent
        )
        return user, session, token

    return mfa_token_use(
        mfa_token=mfa_token,
        ip_address=ip_address,
        user_agent=user_agent,
        then=open_session,
        **factor,
    )


# Reauthentication ----------------------------------------------------------------------------


def session_reauthenticate(
    *,
    session: Session,
    password: str = "",
    method: str = "",
    code: str = "",
    credential: dict | None = None,
    ip_address: str | None,
    user_agent: str,
) -> Session:
    """Prove the session's user again (password or a second factor); the session is fresh."""
    user = session.user

    def refresh(factor: str) -> None:
        session.authenticated_at = mfa.mfa_now()
        session.amr = sorted({*session.amr, factor})
        Session.objects.filter(pk=session.pk).update(
            authenticated_at=session.authenticated_at, amr=session.amr
        )
        audit_record(
            event_type="auth.reauthenticated",
            actor=user,
            user=user,
            target=session,
            metadata={"method": factor},
            ip_address=ip_address,
            user_agent=user_agent,
        )

    if method:
        second_factor_check(
            user=user,
            method=method,
            code=code,
            credential=credential,
            ip_address=ip_address,
            user_agent=user_agent,
            then=refresh,
        )
        return session
    password_check(user=user, password=password, ip_address=ip_address, user_agent=user_agent)
    with transaction.atomic():
        refresh("pwd")
    return session


def passkey_sign_in(
    *, credential: dict, ip_address: str | None, user_agent: str
) -> tuple[User, Session, str]:
    """A passwordless sign-in with a discoverable passkey (user verified): a session whose
    amr is webauthn, a second factor on its own."""
    user = passkey_authenticate(credential=credential, user=None).user
    if not user_can_sign_in(user):
        raise AccountDisabled()
    session, token = session_sign_in(
        user=user, amr=["webauthn"], email=user.email, ip_address=ip_address, user_agent=user_agent
    )
    return user, session, token
