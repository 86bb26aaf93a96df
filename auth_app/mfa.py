"""Second factors: who needs one, TOTP, recovery codes, the freshness of a sign-in, reset.

Passkeys (WebAuthn) live in passkeys.py; signin.py takes a sign-in through its steps.
"""

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Least
from django.utils import timezone

from audit_app.services import audit_record

from .errors import (
    InvalidCode,
    MfaAlreadyEnabled,
    MfaNotEnabled,
    MfaNotPending,
    ReauthenticationRequired,
)
from .models import Passkey, RecoveryCode, Session, TwoFactor, User
from .ratelimit import lockout_check, lockout_record_failure
from .tokens import token_hash

STEP_SECONDS = 30
RECOVERY_CODES = 10
SECOND_FACTORS = ("otp", "webauthn")


def mfa_now() -> datetime:
    """The clock of this module: TOTP steps, token expiry and reauthentication windows."""
    return timezone.now()


# What a user must have: registered from above (the role flag lives in permissions_app).
_requirement = None


def register_requirement(rule) -> None:
    """`rule(user)` answers since when `user` must hold a second factor (None: never)."""
    global _requirement
    _requirement = rule


def with_mfa_since(users: QuerySet[User]) -> QuerySet[User]:
    """`users` annotated with `mfa_since`: since when each has held a second factor (a
    confirmed authenticator app or a passkey, whichever came first), None for none."""
    passkeys = Passkey.objects.filter(user=OuterRef("pk")).order_by("created_at")
    first_passkey = Subquery(passkeys.values("created_at")[:1])
    # PostgreSQL's LEAST skips NULLs: either factor alone is enough.
    return users.annotate(mfa_since=Least("two_factor__confirmed_at", first_passkey))


def mfa_enabled(user: User) -> bool:
    """A confirmed authenticator app or at least one passkey."""
    return with_mfa_since(User.objects.filter(pk=user.pk)).filter(mfa_since__isnull=False).exists()


def mfa_methods(user: User) -> list[str]:
    """The second factors `user` may answer with, in the order the API lists them."""
    methods = []
    if TwoFactor.objects.filter(user=user, confirmed_at__isnull=False).exists():
        methods.append("totp")
    if RecoveryCode.objects.filter(user=user, used_at__isnull=True).exists():
        methods.append("recovery_code")
    if Passkey.objects.filter(user=user).exists():
        methods.append("passkey")
    return methods


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def mfa_enroll_deadline(user: User) -> datetime | None:
    """When a session of `user` stops reaching more than the enrolment endpoints, or None."""
    since = _requirement(user) if _requirement else None
    if since is None or mfa_enabled(user):
        return None
    return since + timedelta(seconds=settings.SV_MFA_GRACE_PERIOD)


def sessions_mark_enrolled(user: User) -> None:
    Session.objects.filter(user=user, mfa_enroll_by__isnull=False).update(mfa_enroll_by=None)


def sessions_mark_unenrolled(user: User) -> None:
    deadline = mfa_enroll_deadline(user)
    if deadline is not None:
        Session.objects.filter(user=user).update(mfa_enroll_by=deadline)


def factor_enrolled(*, user: User, new_recovery_codes: bool, **audit) -> list[str]:
    """After `user` gains a second factor, in the caller's transaction: new recovery codes
    (if asked: the first factor), no enrolment deadline on their sessions, and the
    mfa.enrolled audit row (`audit`: its target and metadata). Returns the codes."""
    codes = recovery_codes_generate(user=user, actor=user) if new_recovery_codes else []
    sessions_mark_enrolled(user)
    audit_record(event_type="mfa.enrolled", actor=user, user=user, **audit)
    return codes


def factor_removed(*, user: User, **audit) -> None:
    """After `user` loses a second factor, in the caller's transaction: with none left, the
    recovery codes go and the sessions get an enrolment deadline; and the mfa.disabled
    audit row (`audit`: its target and metadata)."""
    if not mfa_enabled(user):
        RecoveryCode.objects.filter(user=user).delete()
        sessions_mark_unenrolled(user)
    audit_record(event_type="mfa.disabled", actor=user, user=user, **audit)


def challenge_failed_record(*, user: User, method: str, reason: str, ip: str | None, agent: str):
    """Record a wrong second factor: audited, and counted towards the password lockout."""
    with transaction.atomic():
        audit_record(
            event_type="mfa.challenge_failed",
            actor=user,
            user=user,
            target=user,
            metadata={"method": method, "reason": reason},
            ip_address=ip,
            user_agent=agent,
        )
    lockout_record_failure(ip=ip, email=user.email, user=user)


# TOTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str

    @property
    def qr_svg(self) -> str:
        """The otpauth URI as an SVG QR code, drawn only where it is shown."""
        return segno.make(self.otpauth_uri, error="m").svg_inline(scale=4)


def totp_enroll_start(*, user: User) -> TotpEnrolment:
    """Give `user` a new, unconfirmed TOTP secret (replacing an unconfirmed one)."""
    with transaction.atomic():
        current = TwoFactor.objects.select_for_update().filter(user=user).first()
        if current is not None and current.confirmed_at is not None:
            raise MfaAlreadyEnabled()
        secret = pyotp.random_base32()
        TwoFactor.objects.update_or_create(
            user=user, defaults={"secret": secret, "confirmed_at": None, "last_used_step": None}
        )
    return _enrolment(user, secret)


def totp_enrolment_pending(*, user: User) -> TotpEnrolment | None:
    """The enrolment started and not yet confirmed, to show again; None if there is none."""
    pending = TwoFactor.objects.filter(user=user, confirmed_at__isnull=True).first()
    return _enrolment(user, pending.secret) if pending else None


def _enrolment(user: User, secret: str) -> TotpEnrolment:
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=user.email, issuer_name=settings.SV_MFA_ISSUER
    )
    return TotpEnrolment(secret, uri)


def totp_step_match(two_factor: TwoFactor, code: str) -> int | None:
    """The step (of the current one and one either side) whose code is `code` and is newer
    than the last accepted one; None if there is none."""
    code = (code or "").replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(two_factor.secret, interval=STEP_SECONDS)
    now = int(mfa_now().timestamp()) // STEP_SECONDS
    for step in (now - 1, now, now + 1):
        if two_factor.last_used_step is not None and step <= two_factor.last_used_step:
            continue  # a replay, or a code older than one already used
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def totp_confirm(
    *,
    user: User,
    code: str,
    ip_address: str | None = None,
    user_agent: str = "",
    new_recovery_codes: bool = True,
) -> list[str]:
    """Confirm the pending TOTP secret with a first code; return new recovery codes when it
    is the user's first second factor (none when `new_recovery_codes` is off: the caller
    handed the user a set at the start)."""
    lockout_check(ip=ip_address, email=user.email, user=user)
    with transaction.atomic():
        two_factor = TwoFactor.objects.select_for_update().filter(user=user).first()
        if two_factor is None or two_factor.confirmed_at is not None:
            raise MfaNotPending()
        step = totp_step_match(two_factor, code)
        if step is not None:
            # Codes come with the first factor: a passkey holder keeps the set they have.
            first = not mfa_enabled(user)
            two_factor.confirmed_at = mfa_now()
            two_factor.last_used_step = step
            two_factor.save(update_fields=["confirmed_at", "last_used_step", "updated_at"])
            return factor_enrolled(
                user=user,
                new_recovery_codes=new_recovery_codes and first,
                target=user,
                metadata={"method": "totp"},
            )
    challenge_failed_record(
        user=user, method="totp", reason="wrong_code", ip=ip_address, agent=user_agent
    )
    raise InvalidCode()


def totp_disable(*, user: User, session: Session | None) -> None:
    """Remove the authenticator app (a fresh authentication required)."""
    reauthentication_check(session=session)
    with transaction.atomic():
        deleted, _ = TwoFactor.objects.filter(user=user, confirmed_at__isnull=False).delete()
        if not deleted:
            raise MfaNotEnabled()
        factor_removed(user=user, target=user, metadata={"method": "totp"})


# Recovery codes --------------------------------------------------------------------------------


def _recovery_code_clean(code: str) -> str:
    return (code or "").strip().lower().replace("-", "").replace(" ", "")


def recovery_codes_generate(*, user: User, actor: User | None) -> list[str]:
    """A new set of single-use codes, replacing the old set; shown once, stored hashed."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = [
        "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(2))
        for _ in range(RECOVERY_CODES)
    ]
    with transaction.atomic():
        RecoveryCode.objects.filter(user=user).delete()
        RecoveryCode.objects.bulk_create(
            RecoveryCode(user=user, code_hash=token_hash(_recovery_code_clean(code)))
            for code in codes
        )
        audit_record(
            event_type="mfa.recovery_codes_generated",
            actor=actor,
            user=user,
            target=user,
            metadata={"count": RECOVERY_CODES},
        )
    return codes


def recovery_codes_regenerate(*, user: User, session: Session | None) -> list[str]:
    """A new set for a user with a second factor (a fresh authentication required)."""
    reauthentication_check(session=session)
    if not mfa_enabled(user):
        raise MfaNotEnabled()
    return recovery_codes_generate(user=user, actor=user)


def recovery_code_use(user: User, code: str) -> bool:
    """Use one unused code of `user` (one conditional UPDATE: never twice)."""
    cleaned = _recovery_code_clean(code)
    if not cleaned:
        return False
    return bool(
        RecoveryCode.objects.filter(
            user=user, code_hash=token_hash(cleaned), used_at__isnull=True
        ).update(used_at=mfa_now())
    )


# Reauthentication --------------------------------------------------------------------------


def reauthentication_check(*, session: Session | None) -> None:
    """Raise ReauthenticationRequired unless `session` proved its user within the window."""
    window = timedelta(seconds=settings.SV_MFA_REAUTH_WINDOW)
    if session is None or session.authenticated_at < mfa_now() - window:
        raise ReauthenticationRequired()


# Administration ------------------------------------------------------------------------------


def mfa_reset(*, user: User, actor: User | None) -> None:
    """Remove every second factor and recovery code of `user` (lost device); audited.

    The caller ends their sessions (the top layer's flow, under the privilege rule).
    """
    with transaction.atomic():
        TwoFactor.objects.filter(user=user).delete()
        Passkey.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
        audit_record(
            event_type="mfa.reset",
            actor=actor,
            user=user,
            target=user,
        )
