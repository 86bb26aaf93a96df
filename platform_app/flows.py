"""Cross-domain work, each flow one transaction: all of it happens or none of it does."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Value
from django.db.models.functions import Lower
from django.utils import timezone

from audit_app.models import READABLE_FIELDS, AuditLog
from audit_app.services import audit_record
from auth_app import accounts, mfa
from auth_app import services as auth_services
from auth_app.accounts import account_link, account_signed_in, oauth_exchange_code_create
from auth_app.errors import EmailTaken, OAuthFailed, RateLimited, TokenInvalid
from auth_app.imports import UserIn, credentials_import, user_build_imported
from auth_app.models import Account, OAuthState, Session, User
from auth_app.oauth import Identity
from auth_app.ratelimit import lockout_check, lockout_clear, rate_limit_hit
from auth_app.selectors import user_can_sign_in, user_get_by_email, verifications_usable
from auth_app.services import (
    EMAIL_VERIFICATION,
    PASSWORD_RESET,
    password_check,
    password_prepare,
    raise_if_email_taken,
    session_create,
    sessions_revoke_for_user,
    sign_in_succeeded,
    user_build,
    user_delete,
    user_email_verify,
    user_password_set,
    user_profile_update,
    verification_consume,
    verification_create,
)
from email_app.models import (
    Category,
    EmailPreference,
    EmailSend,
    EmailSuppression,
)
from email_app.services import SecretLink, email_queue, template_find
from permissions_app.catalogue import DEFAULT_USER_ROLE, SUPERUSER_ROLE
from permissions_app.models import UserRole
from permissions_app.selectors import role_find
from permissions_app.services import (
    mfa_reset_check,
    permission_cache_refresh,
    privilege_check,
    role_grant,
    superuser_change_check,
)
from sv_sdk import metrics
from sv_sdk.db.batch import Batch
from sv_sdk.errors import ValidationFailed


def verification_url(token: str) -> str:
    # Built from the configured public URL, never from a request's Host header.
    return f"{settings.SV_PUBLIC_URL}/verify-email?token={token}"


def user_onboard(
    *,
    email: str,
    password: str | None = None,
    name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
    actor: User | None = None,
    validate_password: bool = False,
    email_verified: bool = False,
) -> User:
    """Create a user with their default role, permission cache, audit row and verification email.

    Used by sign-up, the admin, createsuperuser and create_user. A user whose
    address is already vouched for (`email_verified`, a provider's verified
    email) starts verified and gets no verification email. Raises
    EmailTaken when the email exists in any letter case; then nothing is written.
    Only a superuser `actor` (or the system) creates a superuser.
    """
    if is_superuser:
        superuser_change_check(actor=actor)
    # Hashed before the transaction opens: no connection waits on the hash.
    user = user_build(
        email=email,
        password=password,
        name=name,
        is_staff=is_staff,
        is_superuser=is_superuser,
        validate_password=validate_password,
    )
    with transaction.atomic(durable=True):
        return _onboard(user=user, actor=actor, email_verified=email_verified)


def _onboard(*, user: User, actor: User | None, email_verified: bool = False) -> User:
    """Save `user` (from user_build) with everything a new user gets.

    Always inside a caller's durable block: no savepoint of its own. The
    statements go to the server in three round trips (sv_sdk.db.batch): what
    the writes depend on, the audit rows' ids, then every write of the seven
    tables, in order. A taken email fails the last at its first statement, so
    nothing is written.
    """
    user.email_verified = email_verified
    with transaction.atomic(savepoint=False):
        reads = Batch()
        role = role_find(reads, name=SUPERUSER_ROLE if user.is_superuser else DEFAULT_USER_ROLE)
        template = template_find(reads, key="verify-email")
        reads.run()

        writes = Batch()
        writes.insert(user)
        role_grant(user=user, role=role.value, granted_by=actor, batch=writes)
        audit_record(
            event_type="user.created",
            actor=actor,
            user=user,
            target=user,
            metadata={
                "is_staff": user.is_staff,
                "is_superuser": user.is_superuser,
                "email_verified": user.email_verified,
            },
            batch=writes,
        )
        if not email_verified:
            # A provider vouched for the address (OAuth): nothing to verify.
            ttl = timedelta(seconds=settings.SV_EMAIL_VERIFICATION_TTL)
            _verification, token = verification_create(
                user=user, purpose=EMAIL_VERIFICATION, ttl=ttl, batch=writes
            )
            email_queue(
                template=template.value, batch=writes, **_verification_email(user, token, ttl)
            )
        try:
            writes.run()
        except IntegrityError as exc:
            raise_if_email_taken(exc)
            raise
    return user


def _mail_name(user: User) -> str:
    """The name a greeting may use: none while the address is unverified.

    Mail to an address nobody has proven carries no text its signer-up chose,
    such as a name written as a phishing line (issue 15, class 7).
    """
    return user.get_short_name() if user.email_verified else ""


def _verification_email(user: User, token: str, ttl: timedelta) -> dict:
    """The verification email's address, category, context and link (email_queue's arguments)."""
    return {
        "to_email": user.email,
        "category": Category.ACCOUNT,
        "context": {
            "user_name": _mail_name(user),
            "expires_hours": int(ttl.total_seconds() // 3600),
        },
        "user": user,
        "secret_links": {"verify_url": SecretLink(verification_url(token), token)},
    }


def _verification_email_queue(*, user: User) -> None:
    ttl = timedelta(seconds=settings.SV_EMAIL_VERIFICATION_TTL)
    _verification, token = verification_create(user=user, purpose=EMAIL_VERIFICATION, ttl=ttl)
    email_queue(template_key="verify-email", **_verification_email(user, token, ttl))


def user_sign_up(
    *,
    email: str,
    password: str,
    name: str,
    ip_address: str | None,
    user_agent: str,
    image: str = "",
) -> tuple[User, Session, str]:
    """Onboard a user and open their first session, in one transaction."""
    # Hashed before the transaction opens: no connection waits on the hash.
    user = user_build(email=email, password=password, name=name, validate_password=True)
    with transaction.atomic(durable=True):
        user = _onboard(user=user, actor=None)
        if image:
            user_profile_update(user=user, actor=user, image=image)
        session, token = session_create(user=user, ip_address=ip_address, user_agent=user_agent)
        metrics.count_on_commit(metrics.SIGN_UPS)
    return user, session, token


def verification_email_resend(*, email: str) -> bool:
    """Queue a new verification email if `email` belongs to an unverified user and the
    recipient's daily cap allows; return whether one was queued."""
    with transaction.atomic(durable=True):
        user = user_get_by_email(email=email)
        if user is None or user.email_verified or not user.is_active:
            return False
        if not recipient_mail_allowed(user=user):
            return False
        _verification_email_queue(user=user)
    return True


def email_verify(*, token: str, repeatable: bool = False) -> User:
    """Use an email-verification token: mark the address verified and send the welcome email.

    With `repeatable` (a link opened by GET, which mail scanners prefetch), a token
    already used answers again until it expires, while the address it verified still
    is verified; a repeat writes nothing (docs/better-auth.md).
    """
    started = timezone.now()
    with transaction.atomic(durable=True):
        verification = verification_consume(
            token=token, purpose=EMAIL_VERIFICATION, repeatable=repeatable
        )
        user = verification.user
        if verification.consumed_at < started and not user.email_verified:
            # Used before, and the address changed since: this token vouches for nothing now.
            raise TokenInvalid()
        if not user.email_verified:
            user_email_verify(user=user)
            email_queue(
                to_email=user.email,
                category=Category.ACCOUNT,
                template_key="welcome",
                context={"user_name": _mail_name(user)},
                user=user,
            )
    return user


def recipient_mail_allowed(*, user: User) -> bool:
    """Count one requested mail to `user`'s address; False past the daily cap per recipient.

    Forgot-password and send-verification-email answer 202 whatever happens, so
    the cap is silent: it bounds what anyone can make us send to one mailbox.
    """
    try:
        rate_limit_hit(scope="mail_per_recipient", subject=user.email_key)
    except RateLimited:
        return False
    return True


def password_reset_url(token: str) -> str:
    return f"{settings.SV_PUBLIC_URL}/reset-password?token={token}"


def password_reset_request(*, email: str) -> None:
    """Email a reset link if `email` belongs to an active user; say nothing either way."""
    with transaction.atomic(durable=True):
        user = user_get_by_email(email=email)
        if user is None or not user.is_active:
            return
        if not recipient_mail_allowed(user=user):
            # No new token either: the link already in the mailbox stays valid.
            audit_record(
                event_type="user.password_reset_requested",
                user=user,
                target=user,
                metadata={"mail": "daily_cap_reached"},
            )
            return
        ttl = timedelta(seconds=settings.SV_PASSWORD_RESET_TTL)
        _verification, token = verification_create(user=user, purpose=PASSWORD_RESET, ttl=ttl)
        audit_record(
            event_type="user.password_reset_requested",
            user=user,
            target=user,
        )
        email_queue(
            to_email=user.email,
            category=Category.SECURITY,
            template_key="reset-password",
            context={
                "user_name": _mail_name(user),
                "expires_minutes": int(ttl.total_seconds() // 60),
            },
            user=user,
            secret_links={"reset_url": SecretLink(password_reset_url(token), token)},
        )


def password_reset(*, token: str, new_password: str) -> User:
    """Use a reset token: set the password, end every session, clear lockouts, notify the user.

    The new password is checked and hashed against the token's user before the
    transaction that uses the token opens (password_prepare); a token used up in
    between fails there, and nothing is written.
    """
    holder = verifications_usable(token=token, purpose=PASSWORD_RESET).select_related("user")
    found = holder.first()
    if found is None or found.user is None:
        raise TokenInvalid()
    password_hash = password_prepare(user=found.user, password=new_password)
    with transaction.atomic(durable=True):
        user = verification_consume(token=token, purpose=PASSWORD_RESET).user
        user_password_set(user=user, password_hash=password_hash, event_type="user.password_reset")
        sessions_revoke_for_user(user=user, actor=user, reason="password_reset")
        lockout_clear(user=user)
        _password_changed_email_queue(user=user)
    return user


def password_change(
    *,
    user: User,
    current_password: str,
    new_password: str,
    revoke_other_sessions: bool,
    current_session: Session | None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> None:
    """Change a signed-in user's password; optionally end their other sessions.

    A wrong current password is audited and counts towards the sign-in lockout,
    committed before the error: the change's own transaction never starts.
    """
    password_check(
        user=user, password=current_password, ip_address=ip_address, user_agent=user_agent
    )
    password_hash = password_prepare(user=user, password=new_password)
    with transaction.atomic(durable=True):
        user_password_set(
            user=user, password_hash=password_hash, event_type="user.password_changed"
        )
        if revoke_other_sessions:
            sessions_revoke_for_user(
                user=user, actor=user, reason="password_change", keep=current_session
            )
        _password_changed_email_queue(user=user)


def _password_changed_email_queue(*, user: User) -> None:
    email_queue(
        to_email=user.email,
        category=Category.SECURITY,
        template_key="password-changed",
        context={"user_name": _mail_name(user)},
        user=user,
    )


def user_update(*, user: User, actor: User, **changes) -> User:
    """Change a user's account as an administrator (email, name, image, email_verified,
    is_active, is_staff, is_superuser), under the privilege rule (docs/security.md).

    Making or unmaking a superuser takes a superuser and refreshes the permission
    cache; a new email address goes through _email_changed; deactivating ends
    every session of theirs. Not durable: the admin saves a user and their role
    rows in one transaction, this flow's writes among them.
    """
    with transaction.atomic():
        privilege_check(actor=actor, user=user)
        if changes.get("is_superuser", user.is_superuser) != user.is_superuser:
            superuser_change_check(actor=actor)
        was_active, was_superuser, old_email = user.is_active, user.is_superuser, user.email
        user_profile_update(user=user, actor=actor, **changes)
        if user.is_superuser != was_superuser:
            # A superuser holds `*`: the cache row follows in the same transaction.
            permission_cache_refresh(user_ids=[user.pk])
        if user.email != old_email:
            _email_changed(user=user, old_email=old_email, actor=actor)
        if was_active and not user.is_active:
            # A deactivated user must not stay signed in anywhere (API tokens and admin).
            sessions_revoke_for_user(user=user, actor=actor, reason="deactivated")
    return user


def _email_changed(*, user: User, old_email: str, actor: User) -> None:
    # A new address taken over by someone else would let them reset the password:
    # the old address hears of the change, the new one (unverified now, see
    # user_profile_update) gets a verification link, and when the change was not
    # the user's own, every session of theirs ends.
    email_queue(
        to_email=old_email,
        category=Category.SECURITY,
        template_key="email-changed",
        context={"user_name": user.get_short_name(), "new_email": user.email},
        user=user,
    )
    _verification_email_queue(user=user)
    if actor.pk != user.pk:
        sessions_revoke_for_user(user=user, actor=actor, reason="email_changed")


def user_ban(*, user: User, until: datetime, actor: User | None) -> int:
    """Ban `user` until `until`, under the privilege rule; every session of theirs ends.

    Returns how many sessions ended. Not durable, so that an admin action bans
    all its users in one transaction or none.
    """
    with transaction.atomic():
        privilege_check(actor=actor, user=user)
        return auth_services.user_ban(user=user, until=until, actor=actor)


def user_unban(*, user: User, actor: User | None) -> None:
    """Lift the ban of `user`, under the privilege rule."""
    with transaction.atomic():
        privilege_check(actor=actor, user=user)
        auth_services.user_unban(user=user, actor=actor)


def user_offboard(*, user: User, actor: User | None = None) -> None:
    """Delete a user and everything that cascades from them (sessions, accounts, tokens,
    role assignments, permission cache, email preferences), under the privilege rule;
    the audit trail stays, and records user.deleted."""
    with transaction.atomic(durable=True):
        privilege_check(actor=actor, user=user)
        # Read before the delete, which clears the pk (the actor may be the user).
        user_id, actor_id = user.pk, actor.pk if actor else None
        roles = sorted(user.user_roles.values_list("role__name", flat=True))
        metadata = {"roles": roles, "is_staff": user.is_staff, "is_superuser": user.is_superuser}
        user_delete(user=user)
        audit_record(
            event_type="user.deleted",
            actor_id=actor_id,
            user_id=user_id,
            target_type="user",
            target_id=user_id,
            metadata=metadata,
        )


# Columns of a person's rows that their data export carries: everything but secrets
# (password hash, token hashes, provider tokens, session data) and stored email
# bodies, which may hold a one-time link until delivered.
EXPORTED = {
    "user": (
        "id",
        "email",
        "name",
        "image",
        "email_verified",
        "is_active",
        "is_staff",
        "is_superuser",
        "banned_until",
        "last_login",
        "created_at",
        "updated_at",
    ),
    "sessions": (
        "id",
        "created_at",
        "last_seen_at",
        "expires_at",
        "ip_address",
        "user_agent",
    ),
    "accounts": (
        "provider_id",
        "account_id",
        "scope",
        "access_token_expires_at",
        "refresh_token_expires_at",
        "created_at",
        "updated_at",
    ),
    "verifications": ("identifier", "expires_at", "consumed_at", "created_at"),
    "emails": (
        "id",
        "created_at",
        "to_email",
        "category",
        "subject",
        "status",
        "sent_at",
        "delivered_at",
        "opened_at",
        "clicked_at",
    ),
    "email_preferences": ("category", "subscribed", "updated_at"),
    "email_suppressions": (
        "address",
        "reason",
        "detail",
        "provider",
        "suppressed_at",
        "expires_at",
        "lifted_at",
    ),
    "roles": ("role__name", "granted_at", "expires_at", "granted_by_id"),
}


def user_data_export(*, user: User, actor: User) -> dict:
    """Everything the four schemas hold about `user`, secrets left out; audited.

    For data-subject access requests. The caller checks `users:export`.
    """
    with transaction.atomic(durable=True):
        audit_record(
            event_type="user.exported",
            actor=actor,
            user=user,
            target=user,
        )
        rows = {
            "sessions": user.sessions.order_by("-created_at"),
            "accounts": user.accounts.order_by("created_at"),
            "verifications": user.verifications.order_by("-created_at"),
            "emails": EmailSend.objects.filter(user=user).order_by("-created_at"),
            "email_preferences": EmailPreference.objects.filter(user=user).order_by("category"),
            # Kept by address, not user: lower() as the table stores it (its unique index).
            "email_suppressions": EmailSuppression.objects.filter(address=Lower(Value(user.email))),
            "roles": UserRole.objects.filter(user=user).order_by("role__name"),
        }
        return {
            "exported_at": timezone.now(),
            "user": User.objects.filter(pk=user.pk).values(*EXPORTED["user"]).get(),
            **{name: list(query.values(*EXPORTED[name])) for name, query in rows.items()},
            "audit_events": list(
                AuditLog.objects.filter(Q(user_id=user.pk) | Q(actor_id=user.pk))
                .order_by("-occurred_at", "-id")
                .values(*READABLE_FIELDS)
            ),
        }


def user_mfa_reset(*, user: User, actor: User | None) -> int:
    """Remove every second factor and recovery code of `user` (a lost device) and end their
    sessions, under the privilege rule (superuser-only for staff); return how many ended.

    Not durable, so that an admin action resets all its users in one transaction or none.
    """
    with transaction.atomic():
        mfa_reset_check(actor=actor, user=user)
        mfa.mfa_reset(user=user, actor=actor)
        return sessions_revoke_for_user(user=user, actor=actor, reason="mfa_reset")


def oauth_sign_in(
    *,
    identity: Identity,
    state: OAuthState,
    trusted_for_linking: bool,
    ip_address: str | None,
    user_agent: str,
) -> tuple[User, Session | None, str | None]:
    """Finish a sign-in (or a link) with a provider, in one transaction (docs/oauth.md).

    A linked identity signs its user in. A new one needs a provider-verified
    email: no user has it, a verified user is onboarded with the account; the
    verified owner of that email gets it linked only through a provider trusted
    for linking; otherwise `account_exists`. Returns (user, session, token) where
    the token is the session's for the cookie mode, a one-time exchange code for
    the code mode; a link returns no session. Failures raise OAuthFailed.
    """
    with transaction.atomic(durable=True):
        account = (
            Account.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(provider_id=identity.provider_id, account_id=identity.account_id)
            .first()
        )
        if state.link_user is not None:
            if account is not None and account.user_id != state.link_user.pk:
                raise OAuthFailed("account_linked_elsewhere")
            if account is None:
                account_link(user=state.link_user, identity=identity, actor=state.link_user)
            else:
                account_signed_in(account=account, identity=identity)
            return state.link_user, None, None
        if account is not None:
            user = account.user
        elif not (identity.email and identity.email_verified):
            raise OAuthFailed("email_unverified")
        else:
            user = user_get_by_email(email=identity.email)
            if user is None:
                try:
                    user = _onboard(
                        user=user_build(email=identity.email, name=identity.name[:200]),
                        actor=None,
                        email_verified=True,
                    )
                except EmailTaken:
                    # A sign-up with the same email committed first.
                    raise OAuthFailed("account_exists") from None
                except ValidationFailed:
                    # The provider vouches for a string that is not an email address.
                    raise OAuthFailed("provider_error") from None
                # A first sign-in through a provider is the user signing up themselves.
                metrics.count_on_commit(metrics.SIGN_UPS)
            elif not (user.email_verified and trusted_for_linking):
                raise OAuthFailed("account_exists")
        try:
            lockout_check(ip=ip_address, email=user.email, user=user)
        except RateLimited:
            raise OAuthFailed("rate_limited") from None
        if not user_can_sign_in(user):
            raise OAuthFailed("account_disabled")
        if account is None:
            account_link(user=user, identity=identity, actor=user)
        else:
            account_signed_in(account=account, identity=identity)
        if mfa.mfa_enabled(user):
            # The second factor finishes this sign-in (docs/mfa.md): whatever the mode,
            # the one-time code's exchange answers the MFA step, and the session opens
            # at auth/mfa/verify with amr ["oauth", <factor>].
            return user, None, oauth_exchange_code_create(user=user)
        session = None
        if state.mode == "code":
            token = oauth_exchange_code_create(user=user)
        else:
            session, token = session_create(
                user=user, ip_address=ip_address, user_agent=user_agent, amr=["oauth"]
            )
        user.last_login = timezone.now()
        user.save(update_fields=["last_login"])
        sign_in_succeeded(
            user=user,
            email=user.email,
            ip_address=ip_address,
            user_agent=user_agent,
            session=session,
            provider=identity.provider_id,
        )
    return user, session, token


def account_unlink(*, account: Account, actor: User) -> None:
    """Unlink a user's provider account as an operator, under the privilege rule."""
    with transaction.atomic(durable=True):
        privilege_check(actor=actor, user=account.user)
        accounts.account_unlink(account=account, actor=actor)


def users_import(*, records: list[UserIn], source: str) -> dict[str, int]:
    """Bring users of another system in, with their credentials, in one transaction.

    Each gets the default role and permission cache (role_grant), one user.imported audit
    row, and the accounts, live sessions and pending tokens of their record
    (auth_app.imports). No verification email: their address is as verified as it was.
    The caller leaves out users already here; a taken email fails the whole transaction
    (EmailTaken). Returns how many rows of each kind were written or left out.
    """
    counts = {"users": len(records)}
    with transaction.atomic(durable=True):
        users = [user_build_imported(record) for record in records]
        reads = Batch()
        role = role_find(reads, name=DEFAULT_USER_ROLE)
        reads.run()

        writes = Batch()
        if users:
            writes.insert(*users)
        for user, record in zip(users, records, strict=True):
            role_grant(user=user, role=role.value, batch=writes)
            audit_record(
                event_type="user.imported",
                actor=None,
                user=user,
                target=user,
                metadata={
                    "source": source,
                    "email_verified": user.email_verified,
                    "sign_in_methods": sorted(
                        {a.provider_id for a in record.accounts}
                        | ({"password"} if record.password else set())
                    ),
                },
                batch=writes,
            )
        try:
            writes.run()
        except IntegrityError as exc:
            raise_if_email_taken(exc)
            raise

        # The sessions' MFA deadline reads the roles just granted, so these come second.
        credentials = Batch()
        for user, record in zip(users, records, strict=True):
            for kind, count in credentials_import(
                user=user, record=record, batch=credentials
            ).items():
                counts[kind] = counts.get(kind, 0) + count
        credentials.run()
    return counts
