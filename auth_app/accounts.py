"""Linked provider accounts and sign-ins in flight: the writes behind docs/oauth.md."""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit_app.services import audit_record
from sv_sdk.errors import ValidationFailed
from sv_sdk.net import origin_trusted

from .errors import AccountNotFound, LastCredential, OAuthFailed, ReconsentNeeded
from .mfa import mfa_enabled, mfa_methods
from .models import Account, OAuthState, User
from .oauth import Identity, provider_get, token_expiry, tokens_refresh
from .services import session_create, verification_consume, verification_create
from .signin import SignInStep, mfa_token_issue
from .tokens import token_generate, token_hash

OAUTH_EXCHANGE = "oauth-exchange"


def callback_url_clean(url: str | None) -> str:
    """Where to send the browser after a sign-in: `url` when its origin is trusted."""
    if not url:
        return f"{settings.SV_PUBLIC_URL}/"
    if not origin_trusted(url):
        raise ValidationFailed(
            errors={"callback_url": ["Not one of this application's origins (SV_TRUSTED_ORIGINS)."]}
        )
    return url


def oauth_state_create(
    *, provider_id: str, callback_url: str, mode: str, browser_token: str, link_user=None
) -> tuple[str, str, str]:
    """Start a sign-in bound to `browser_token` (the cookie); return (state, nonce, verifier)."""
    state, nonce, code_verifier = token_generate(), token_generate(), token_generate()
    now = timezone.now()
    OAuthState.objects.create(
        state_hash=token_hash(state),
        browser_hash=token_hash(browser_token),
        provider_id=provider_id,
        code_verifier=code_verifier,
        nonce=nonce,
        callback_url=callback_url,
        mode=mode,
        link_user=link_user,
        expires_at=now + timedelta(seconds=settings.SV_OAUTH_STATE_TTL),
    )
    return state, nonce, code_verifier


def oauth_state_consume(*, state: str, browser_token: str, provider_id: str) -> OAuthState:
    """Use a sign-in's state once (deleted whatever happens next); OAuthFailed("invalid_state")
    when it is unknown, expired, for another provider or from another browser."""
    with transaction.atomic():
        row = (
            OAuthState.objects.select_for_update(of=("self",))
            .select_related("link_user")
            .filter(state_hash=token_hash(state or ""))
            .first()
        )
        if row is None:
            raise OAuthFailed("invalid_state")
        row.delete()
    if (
        row.expires_at <= timezone.now()
        or row.provider_id != provider_id
        or row.browser_hash != token_hash(browser_token or "")
    ):
        raise OAuthFailed("invalid_state", callback_url=row.callback_url)
    return row


def oauth_states_prune() -> int:
    deleted, _ = OAuthState.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


def _tokens_store(account: Account, tokens: dict) -> None:
    account.access_token = tokens.get("access_token", "")
    # A provider that does not rotate leaves the refresh token out of a refresh's answer.
    account.refresh_token = tokens.get("refresh_token", account.refresh_token)
    account.id_token = tokens.get("id_token", account.id_token)
    account.access_token_expires_at = token_expiry(tokens)
    account.scope = tokens.get("scope", account.scope)


def account_link(*, user: User, identity: Identity, actor: User | None) -> Account:
    """Attach `identity` to `user` and record account.linked."""
    account = Account(
        user=user,
        provider_id=identity.provider_id,
        account_id=identity.account_id,
        last_sign_in_at=timezone.now(),
    )
    _tokens_store(account, identity.tokens)
    with transaction.atomic():
        try:
            with transaction.atomic():
                account.save(force_insert=True)
        except IntegrityError:
            raise OAuthFailed("account_linked_elsewhere") from None
        audit_record(
            event_type="account.linked",
            actor=actor or user,
            user=user,
            target=account,
            metadata={"provider": identity.provider_id},
        )
    return account


def account_signed_in(*, account: Account, identity: Identity) -> None:
    """Keep the tokens of a returning sign-in and when it happened."""
    _tokens_store(account, identity.tokens)
    account.last_sign_in_at = timezone.now()
    account.needs_reconsent = False
    account.save()


def account_unlink(*, account: Account, actor: User) -> None:
    """Remove a linked account, never the user's last way to sign in (LastCredential)."""
    with transaction.atomic():
        # The user's row lock serialises two unlinks of their last two accounts.
        user = User.objects.select_for_update().get(pk=account.user_id)
        others = Account.objects.filter(user=user).exclude(pk=account.pk).exists()
        if not user.has_usable_password() and not others:
            raise LastCredential()
        Account.objects.filter(pk=account.pk).delete()
        audit_record(
            event_type="account.unlinked",
            actor=actor,
            user=user,
            target=account,
            metadata={"provider": account.provider_id},
        )


def account_get_for_user(*, user: User, account_id: str) -> Account:
    account = Account.objects.filter(user=user, pk=account_id).first()
    if account is None:
        raise AccountNotFound()
    return account


def oauth_exchange_code_create(*, user: User) -> str:
    """A one-time code, valid for seconds, that oauth_exchange trades for a session."""
    ttl = timedelta(seconds=settings.SV_OAUTH_EXCHANGE_TTL)
    _verification, code = verification_create(user=user, purpose=OAUTH_EXCHANGE, ttl=ttl)
    return code


def oauth_exchange(*, code: str, ip_address: str | None, user_agent: str) -> SignInStep:
    """Trade a one-time sign-in code for a session, or for the second step of a user who
    has a second factor (TokenInvalid when the code is used or expired)."""
    with transaction.atomic():
        user = verification_consume(token=code, purpose=OAUTH_EXCHANGE).user
        if mfa_enabled(user):
            token, expires_at = mfa_token_issue(user=user, first_factor="oauth")
            return SignInStep(
                user=user, mfa_token=token, mfa_expires_at=expires_at, methods=mfa_methods(user)
            )
        session, token = session_create(
            user=user, ip_address=ip_address, user_agent=user_agent, amr=["oauth"]
        )
    return SignInStep(user=user, session=session, token=token)


def account_access_token(*, user: User, provider_id: str) -> str:
    """A fresh access token of `user` at `provider_id`, refreshed (and rotated) when needed.

    The account's row lock makes two workers refresh once: the second finds the new
    token. A refused refresh token marks the account as needing re-consent.
    """
    provider = provider_get(provider_id)
    refused = False
    with transaction.atomic():
        account = Account.objects.select_for_update().filter(user=user, provider_id=provider_id)
        account = account.first()
        if account is None:
            raise AccountNotFound()
        expires = account.access_token_expires_at
        if account.access_token and (expires is None or expires > timezone.now() + _MARGIN):
            return account.access_token
        if account.needs_reconsent or not account.refresh_token:
            raise ReconsentNeeded()
        try:
            tokens = tokens_refresh(provider, refresh_token=account.refresh_token)
        except OAuthFailed as exc:
            if exc.code != "invalid_grant":
                raise
            refused = True
            account.needs_reconsent = True
            account.save(update_fields=["needs_reconsent", "updated_at"])
            audit_record(
                event_type="account.reconsent_needed",
                user=user,
                target=account,
                metadata={"provider": provider_id},
            )
        else:
            _tokens_store(account, tokens)
            account.save()
    if refused:
        raise ReconsentNeeded()
    return account.access_token


# An access token this close to expiry is refreshed first.
_MARGIN = timedelta(seconds=30)


def oauth_sign_in_failed(
    *, provider_id: str, reason: str, email: str, ip_address: str | None, user_agent: str
) -> None:
    """Record a failed sign-in with a provider (its stable error code is the reason)."""
    audit_record(
        event_type="auth.sign_in_failed",
        metadata={"method": "oauth", "provider": provider_id, "reason": reason, "email": email},
        ip_address=ip_address,
        user_agent=user_agent,
    )
