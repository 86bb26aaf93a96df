"""Outside identity providers (OpenID Connect, GitHub's OAuth 2.0) through Authlib's client.

Providers come from settings.SV_OAUTH_PROVIDERS (the SV_OAUTH_PROVIDERS environment variable):
an object of provider id -> settings. Discovery, JWKS, PKCE and the ID token's checks
(signature, iss, aud, exp, nonce) are Authlib's; this module maps each provider's claims to one
Identity and each failure to one stable error code.
"""

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.django_client import OAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from joserfc.errors import JoseError

from .errors import OAuthFailed, UnknownProvider

# The shape of each preset; a provider's own settings override any of these keys.
PRESETS = {
    "oidc": {"scopes": ["openid", "email", "profile"]},
    "google": {
        "name": "Google",
        "issuer": "https://accounts.google.com",
        "scopes": ["openid", "email", "profile"],
        # Google issues a refresh token only when asked for offline access.
        "authorize_params": {"access_type": "offline", "prompt": "consent"},
    },
    "microsoft": {
        "name": "Microsoft",
        "tenant": "common",
        "scopes": ["openid", "email", "profile", "offline_access"],
    },
    "github": {
        "name": "GitHub",
        "authorization_endpoint": "https://github.com/login/oauth/authorize",
        "token_endpoint": "https://github.com/login/oauth/access_token",
        "api_url": "https://api.github.com/",
        "scopes": ["read:user", "user:email"],
    },
}
_KEYS = {
    "preset", "name", "issuer", "tenant", "client_id", "client_secret", "private_key",
    "private_key_id", "scopes", "enabled",
    "trusted_for_linking", "authorize_params", "authorization_endpoint", "token_endpoint",
    "api_url",
}  # fmt: skip
# Entra ID's multi-tenant endpoints: the ID token's issuer names the user's own tenant.
_MICROSOFT_SHARED_TENANTS = {"common", "organizations", "consumers"}


@dataclass(frozen=True)
class Provider:
    id: str
    preset: str
    name: str
    client_id: str
    client_secret: str = field(repr=False)
    # PEM private key for private_key_jwt client authentication (instead of the secret).
    private_key: str = field(repr=False)
    private_key_id: str
    scopes: tuple[str, ...]
    enabled: bool
    trusted_for_linking: bool
    issuer: str = ""
    tenant: str = ""
    authorize_params: tuple[tuple[str, str], ...] = ()
    authorization_endpoint: str = ""
    token_endpoint: str = ""
    api_url: str = ""

    @property
    def is_oidc(self) -> bool:
        return self.preset != "github"

    @property
    def discovery_url(self) -> str:
        if self.preset == "microsoft":
            base = self.issuer or f"https://login.microsoftonline.com/{self.tenant}/v2.0"
        else:
            base = self.issuer
        return f"{base.rstrip('/')}/.well-known/openid-configuration"

    @property
    def redirect_uri(self) -> str:
        """The one callback address registered at the provider (never from a request)."""
        return f"{settings.SV_PUBLIC_URL}/api/v1/auth/oauth/{self.id}/callback"


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in, and the tokens it issued."""

    provider_id: str
    account_id: str
    email: str
    email_verified: bool
    name: str
    tokens: dict = field(repr=False)

    @property
    def access_token_expires_at(self) -> datetime | None:
        return token_expiry(self.tokens)


def token_expiry(tokens: dict) -> datetime | None:
    if tokens.get("expires_at"):
        return datetime.fromtimestamp(int(tokens["expires_at"]), tz=timezone.get_current_timezone())
    if tokens.get("expires_in"):
        return timezone.now() + timedelta(seconds=int(tokens["expires_in"]))
    return None


def _provider_from(provider_id: str, config: dict) -> Provider:
    if not isinstance(config, dict):
        raise ImproperlyConfigured(f"SV_OAUTH_PROVIDERS[{provider_id!r}] must be an object")
    unknown = set(config) - _KEYS
    preset = config.get("preset", "oidc")
    if unknown or preset not in PRESETS:
        raise ImproperlyConfigured(
            f"SV_OAUTH_PROVIDERS[{provider_id!r}]: unknown keys {sorted(unknown)} or preset"
        )
    merged = {**PRESETS[preset], **config}
    if not merged.get("client_id") or (preset == "oidc" and not merged.get("issuer")):
        raise ImproperlyConfigured(
            f"SV_OAUTH_PROVIDERS[{provider_id!r}] needs client_id (and issuer for an OIDC provider)"
        )
    return Provider(
        id=provider_id,
        preset=preset,
        name=merged.get("name") or provider_id,
        client_id=merged["client_id"],
        client_secret=merged.get("client_secret", ""),
        private_key=merged.get("private_key", ""),
        private_key_id=merged.get("private_key_id", ""),
        scopes=tuple(merged["scopes"]),
        enabled=bool(merged.get("enabled", True)),
        trusted_for_linking=bool(merged.get("trusted_for_linking", False)),
        issuer=merged.get("issuer", ""),
        tenant=merged.get("tenant", ""),
        authorize_params=tuple(sorted(merged.get("authorize_params", {}).items())),
        authorization_endpoint=merged.get("authorization_endpoint", ""),
        token_endpoint=merged.get("token_endpoint", ""),
        api_url=merged.get("api_url", ""),
    )


def providers() -> list[Provider]:
    """Every configured provider, enabled or not, in the order of the settings."""
    return [_provider_from(pid, config) for pid, config in settings.SV_OAUTH_PROVIDERS.items()]


def provider_get(provider_id: str) -> Provider:
    """An enabled provider, or UnknownProvider (404)."""
    config = settings.SV_OAUTH_PROVIDERS.get(provider_id)
    provider = _provider_from(provider_id, config) if config is not None else None
    if provider is None or not provider.enabled:
        raise UnknownProvider()
    return provider


def _client(provider: Provider):
    # One Authlib client per provider settings: it caches the discovery document and the JWKS.
    return _client_for(provider, settings.SV_OAUTH_TIMEOUT)


@functools.lru_cache(maxsize=64)
def _client_for(provider: Provider, timeout: float):
    if provider.private_key:
        # The client proves itself with a JWT signed by its key (RFC 7523), not a shared secret.
        headers = {"kid": provider.private_key_id} if provider.private_key_id else None
        secret, auth_method = provider.private_key, PrivateKeyJWT(headers=headers)
    elif provider.preset == "github":
        secret, auth_method = provider.client_secret, "client_secret_post"
    else:
        secret, auth_method = provider.client_secret, "client_secret_basic"
    kwargs = {
        "client_id": provider.client_id,
        "client_secret": secret,
        "client_kwargs": {
            "scope": " ".join(provider.scopes),
            "code_challenge_method": "S256",
            "default_timeout": timeout,
            "token_endpoint_auth_method": auth_method,
        },
        "authorize_params": dict(provider.authorize_params),
    }
    if provider.is_oidc:
        kwargs["server_metadata_url"] = provider.discovery_url
    if provider.authorization_endpoint:
        kwargs["authorize_url"] = provider.authorization_endpoint
    if provider.token_endpoint:
        kwargs["access_token_url"] = provider.token_endpoint
    if provider.api_url:
        kwargs["api_base_url"] = provider.api_url
    return OAuth().register(provider.id, **kwargs)


def _failures(call):
    """Run a call to the provider; its failures become OAuthFailed with a stable code."""
    try:
        return call()
    except requests.RequestException as exc:
        response = getattr(exc, "response", None)
        if response is not None and response.status_code < 500:
            raise OAuthFailed("provider_error") from None
        raise OAuthFailed("provider_unavailable") from None
    except (JoseError, AuthlibBaseError) as exc:
        code = getattr(exc, "error", "")
        if code in ("invalid_grant", "invalid_client", "access_denied"):
            raise OAuthFailed(code) from None
        if isinstance(exc, JoseError):
            raise OAuthFailed("invalid_id_token") from None
        raise OAuthFailed("provider_error") from None
    except (ValueError, KeyError, TypeError):
        # A body that is not the JSON the protocol promises.
        raise OAuthFailed("provider_error") from None


def authorization_url(provider: Provider, *, state: str, nonce: str, code_verifier: str) -> str:
    """The provider's authorization URL for this state, nonce and PKCE verifier."""
    client = _client(provider)
    params = {"state": state, "code_verifier": code_verifier}
    if provider.is_oidc:
        params["nonce"] = nonce
    return _failures(
        lambda: client.create_authorization_url(provider.redirect_uri, **params)["url"]
    )


def identity_fetch(provider: Provider, *, code: str, code_verifier: str, nonce: str) -> Identity:
    """Trade the authorization code for tokens and return the checked identity."""
    client = _client(provider)

    def fetch():
        tokens = client.fetch_access_token(
            provider.redirect_uri, code=code, code_verifier=code_verifier
        )
        if provider.is_oidc:
            return _oidc_identity(provider, client, tokens, nonce)
        return _github_identity(provider, client, tokens)

    return _failures(fetch)


def _oidc_identity(provider: Provider, client, tokens: dict, nonce: str) -> Identity:
    if "id_token" not in tokens:
        raise OAuthFailed("invalid_id_token")
    claims_options = None
    issuer = client.load_server_metadata().get("issuer", "")
    if provider.preset == "microsoft" and "{tenantid}" in issuer:
        # The multi-tenant document's issuer is a template: the token must name its own tenant.
        claims_options = {
            "iss": {
                "essential": True,
                "validate": lambda claims, value: (
                    value == issuer.replace("{tenantid}", str(claims.get("tid", "")))
                ),
            }
        }
    claims = dict(client.parse_id_token(tokens, nonce, claims_options=claims_options, leeway=30))
    if "email" not in claims and client.load_server_metadata().get("userinfo_endpoint"):
        claims = {**dict(client.userinfo(token=tokens)), **claims}
    if provider.preset == "microsoft":
        # Entra ID does not check the email claim; `xms_edov` says the domain owner verified it.
        verified = claims.get("xms_edov") is True
    else:
        verified = claims.get("email_verified") is True
    return Identity(
        provider_id=provider.id,
        account_id=str(claims["sub"]),
        email=claims.get("email") or "",
        email_verified=verified and bool(claims.get("email")),
        name=claims.get("name") or "",
        tokens=tokens,
    )


def _github_identity(provider: Provider, client, tokens: dict) -> Identity:
    user = client.get("user", token=tokens)
    user.raise_for_status()
    profile = user.json()
    emails = client.get("user/emails", token=tokens)
    emails.raise_for_status()
    # GitHub's profile email is whatever the user made public; only /user/emails says verified.
    primary = next((e for e in emails.json() if e.get("primary") and e.get("verified")), None)
    return Identity(
        provider_id=provider.id,
        account_id=str(profile["id"]),
        email=primary["email"] if primary else "",
        email_verified=primary is not None,
        name=profile.get("name") or profile.get("login") or "",
        tokens=tokens,
    )


def tokens_refresh(provider: Provider, *, refresh_token: str) -> dict:
    """New tokens for a refresh token; OAuthFailed("invalid_grant") when it is revoked."""
    client = _client(provider)
    return _failures(
        lambda: client.fetch_access_token(grant_type="refresh_token", refresh_token=refresh_token)
    )
