"""Production settings: everything secret comes from the environment, cookies are secure."""

from django.core.exceptions import ImproperlyConfigured

from sv_sdk import env as sv_env

# Checked before the base settings load: without these, base would write a
# development key file and start the embedded PostgreSQL.
if not sv_env.SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set in production")
if not sv_env.DATABASE_URL:
    raise ImproperlyConfigured("DATABASE_URL must be set in production")
# A key derived from SECRET_KEY would tie the secrets at rest to the signing key.
if not sv_env.ENCRYPTION_KEYS:
    raise ImproperlyConfigured(
        "SV_ENCRYPTION_KEYS must be set in production (comma-separated Fernet keys, newest first)"
    )
# A key anyone can read in this repository forges sessions or decrypts tokens. The messages
# name no value.
if sv_env.SECRET_KEY in sv_env.PUBLISHED_SECRETS or sv_env.SECRET_KEY.startswith(
    "django-insecure-"
):
    raise ImproperlyConfigured(
        "SECRET_KEY is a published example value; generate your own "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')"
    )
if sv_env.PUBLISHED_SECRETS.intersection(sv_env.ENCRYPTION_KEYS):
    raise ImproperlyConfigured(
        "SV_ENCRYPTION_KEYS holds a published example key; generate your own (python -c "
        "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
    )

from .base import *  # noqa: F403

DEBUG = False
SECURE_SSL_REDIRECT = sv_env.env.bool("SECURE_SSL_REDIRECT", default=True)
# Believed only behind a trusted proxy, and then only from it (sv_sdk.net); without one, a
# client could claim https for a plain http request.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SV_TRUSTED_PROXIES else None  # noqa: F405
SECURE_HSTS_SECONDS = sv_env.env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SV_SESSION_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
