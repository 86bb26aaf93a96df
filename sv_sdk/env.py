"""The one module that reads the process environment."""

import ipaddress
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DATABASE_URL: str | None = env.str("DATABASE_URL", default=None) or None
# Migrations may run as a more privileged (owner) role than the application.
DATABASE_MIGRATE_URL: str | None = env.str("DATABASE_MIGRATE_URL", default=None) or None
DATABASE_POOL_SIZE: int = env.int("DATABASE_POOL_SIZE", default=20)
# Seconds a request waits for a pooled connection before it fails (503) instead of hanging.
DATABASE_POOL_TIMEOUT: float = env.float("DATABASE_POOL_TIMEOUT", default=3.0)
# Set when DATABASE_URL names a transaction-mode pooler (PgBouncer): the same database reached
# without it. The job worker connects here, since LISTEN/NOTIFY needs a session of its own, and
# the app turns off what a transaction pooler breaks (docs/pooling.md).
DATABASE_DIRECT_URL: str | None = env.str("DATABASE_DIRECT_URL", default=None) or None
# Named statements each connection keeps prepared for the hottest reads. Defaults to 0 behind a
# transaction-mode pooler, where a connection's prepared statements cannot be relied on.
DATABASE_PREPARED_STATEMENTS: int = env.int(
    "DATABASE_PREPARED_STATEMENTS", default=0 if DATABASE_DIRECT_URL else 32
)
# Streaming replicas of DATABASE_URL's database (comma-separated URLs) for the reads that
# tolerate lag (docs/scaling.md); none: every read goes to the primary.
DATABASE_REPLICA_URLS: list[str] = [
    url.strip() for url in env.list("DATABASE_REPLICA_URLS", default=[]) if url.strip()
]
# A replica further behind than this many seconds leaves the rotation until it catches up.
REPLICA_MAX_LAG: float = env.float("SV_REPLICA_MAX_LAG", default=5.0)
# Seconds each process trusts its last check of the replicas (lag, reachable).
REPLICA_CHECK_INTERVAL: float = env.float("SV_REPLICA_CHECK_INTERVAL", default=1.0)
SECRET_KEY: str | None = env.str("SECRET_KEY", default=None) or None
# Secrets this repository has published (example values, earlier docker-compose.yml defaults,
# the image build's placeholder): anyone can read them, so production settings refuse them
# as SECRET_KEY or among SV_ENCRYPTION_KEYS. tests/security checks that every value the
# example files carry is listed.
PUBLISHED_SECRETS: frozenset[str] = frozenset(
    {
        "dev-only-insecure-key-set-SECRET_KEY-for-anything-else",
        "WnjGm-hoaV134oL-QzZ7_phRVq5pAurdsU7QlodVmNg=",
        "build-only",
    }
)
DEBUG: bool = env.bool("DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
EMAIL_URL: str | None = env.str("EMAIL_URL", default=None) or None
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="sv_sdk <no-reply@localhost>")
PUBLIC_URL: str = env.str("SV_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
DATA_DIR: Path = Path(env.str("SV_DATA_DIR", default=str(BASE_DIR / ".data")))
ADMIN_EMAIL: str = env.str("SV_ADMIN_EMAIL", default="admin@example.com")
LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO")


def email_config() -> dict:
    """Django email settings from EMAIL_URL (smtp://, smtp+tls://, consolemail://, ...)."""
    if EMAIL_URL is None:
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    return env.email_url_config(EMAIL_URL)


# Fernet keys for secret columns, comma-separated: the first encrypts, every one decrypts.
ENCRYPTION_KEYS: list[str] = [
    key.strip() for key in env.list("SV_ENCRYPTION_KEYS", default=[]) if key.strip()
]


def role_password(variable: str) -> str | None:
    """A database role's password, read when `setup_db_roles` asks for it."""
    return env.str(variable, default=None) or None


# Email through an ESP with django-anymail (issue 6). SV_EMAIL_PROVIDER unset: EMAIL_URL decides.
EMAIL_PROVIDER: str = env.str("SV_EMAIL_PROVIDER", default="").strip().lower()
EMAIL_API_KEY: str = env.str("SV_EMAIL_API_KEY", default="")
# HTTP basic auth "user:password" the ESP's webhook calls carry (every ESP).
EMAIL_WEBHOOK_SECRET: str = env.str("SV_EMAIL_WEBHOOK_SECRET", default="")
# The ESP's webhook signing secret (Resend, Mailgun), checked on every event.
EMAIL_WEBHOOK_SIGNING_KEY: str = env.str("SV_EMAIL_WEBHOOK_SIGNING_KEY", default="")
EMAIL_SENDER_DOMAIN: str = env.str("SV_EMAIL_SENDER_DOMAIN", default="")
EMAIL_API_URL: str = env.str("SV_EMAIL_API_URL", default="")
EMAIL_REGION: str = env.str("SV_EMAIL_REGION", default="")
EMAIL_TIMEOUT: int = env.int("SV_EMAIL_TIMEOUT", default=30)
# Other ESPs whose webhooks are accepted besides SV_EMAIL_PROVIDER's (comma-separated).
EMAIL_WEBHOOK_PROVIDERS: list[str] = sorted(
    {p.strip().lower() for p in env.list("SV_EMAIL_WEBHOOK_PROVIDERS", default=[]) if p.strip()}
    | ({EMAIL_PROVIDER} if EMAIL_PROVIDER else set())
)
# Soft bounces: how many sends to one address, within how many seconds, suppress it for how long.
EMAIL_SOFT_BOUNCE_LIMIT: int = env.int("SV_EMAIL_SOFT_BOUNCE_LIMIT", default=3)
EMAIL_SOFT_BOUNCE_WINDOW: int = env.int("SV_EMAIL_SOFT_BOUNCE_WINDOW", default=7 * 24 * 3600)
EMAIL_SOFT_BOUNCE_SUPPRESSION: int = env.int(
    "SV_EMAIL_SOFT_BOUNCE_SUPPRESSION", default=3 * 24 * 3600
)

# provider -> (backend, API key setting, signing key setting), in anymail's names.
_ANYMAIL_PROVIDERS = {
    "resend": ("anymail.backends.resend.EmailBackend", "RESEND_API_KEY", "RESEND_SIGNING_SECRET"),
    "postmark": ("anymail.backends.postmark.EmailBackend", "POSTMARK_SERVER_TOKEN", None),
    "mailgun": (
        "anymail.backends.mailgun.EmailBackend",
        "MAILGUN_API_KEY",
        "MAILGUN_WEBHOOK_SIGNING_KEY",
    ),
    # Credentials come from boto3's usual sources (AWS_ACCESS_KEY_ID, a role, ...).
    "amazon_ses": ("anymail.backends.amazon_ses.EmailBackend", None, None),
}


def anymail_config() -> dict:
    """EMAIL_BACKEND and ANYMAIL for SV_EMAIL_PROVIDER; only ANYMAIL (webhooks) when unset."""
    anymail: dict = {}
    if EMAIL_WEBHOOK_SECRET:
        anymail["WEBHOOK_SECRET"] = EMAIL_WEBHOOK_SECRET
    for provider in EMAIL_WEBHOOK_PROVIDERS:
        signing_setting = _ANYMAIL_PROVIDERS.get(provider, (None, None, None))[2]
        if signing_setting and EMAIL_WEBHOOK_SIGNING_KEY:
            anymail[signing_setting] = EMAIL_WEBHOOK_SIGNING_KEY
    if not EMAIL_PROVIDER:
        return {"ANYMAIL": anymail}
    if EMAIL_PROVIDER not in _ANYMAIL_PROVIDERS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"SV_EMAIL_PROVIDER must be one of {', '.join(sorted(_ANYMAIL_PROVIDERS))}"
        )
    backend, key_setting, _signing = _ANYMAIL_PROVIDERS[EMAIL_PROVIDER]
    if key_setting and EMAIL_API_KEY:
        anymail[key_setting] = EMAIL_API_KEY
    if EMAIL_PROVIDER == "mailgun":
        if EMAIL_SENDER_DOMAIN:
            anymail["MAILGUN_SENDER_DOMAIN"] = EMAIL_SENDER_DOMAIN
        if EMAIL_API_URL:
            anymail["MAILGUN_API_URL"] = EMAIL_API_URL  # e.g. the EU region
    # One timeout and one retry rule for every ESP: the outbox's (boto3 would retry on its own).
    anymail["REQUESTS_TIMEOUT"] = EMAIL_TIMEOUT
    if EMAIL_PROVIDER == "amazon_ses":
        anymail["AMAZON_SES_CLIENT_PARAMS"] = {
            **({"region_name": EMAIL_REGION} if EMAIL_REGION else {}),
            "config": {
                "connect_timeout": EMAIL_TIMEOUT,
                "read_timeout": EMAIL_TIMEOUT,
                "retries": {"total_max_attempts": 1},
            },
        }
    return {"EMAIL_BACKEND": backend, "ANYMAIL": anymail}


# Audit row MAC keys (issue 5), comma-separated: the first signs, every one verifies.
# Unset: derived from SECRET_KEY (and SECRET_KEY_FALLBACKS).
AUDIT_KEYS: list[str] = [
    key.strip() for key in env.list("SV_AUDIT_KEYS", default=[]) if key.strip()
]
# Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR blocks, comma-separated).
# Empty (the default): the client is the TCP peer and X-Forwarded-For is ignored.
TRUSTED_PROXIES: list[str] = [
    entry.strip() for entry in env.list("SV_TRUSTED_PROXIES", default=[]) if entry.strip()
]
# Load tests only: every simulated client shares one address, so per-IP limits must go.
RATE_LIMITS_ENABLED: bool = env.bool("SV_RATE_LIMITS_ENABLED", default=True)
# Sign-in providers (issue 17), a JSON object: provider id -> settings (docs/oauth.md).
OAUTH_PROVIDERS: dict = env.json("SV_OAUTH_PROVIDERS", default={})
# Origins a sign-in may send the browser back to; unset: SV_PUBLIC_URL's origin only.
TRUSTED_ORIGINS: list[str] = [
    origin.strip().rstrip("/") for origin in env.list("SV_TRUSTED_ORIGINS", default=[])
]

# Operations (issue 25) -----------------------------------------------------------------------
# `json`: one JSON object per log line; anything else: plain text.
LOG_FORMAT: str = env.str("LOG_FORMAT", default="text").strip().lower()
# /metrics answers a bearer of this token, or a client in one of these networks (CIDR).
METRICS_TOKEN: str = env.str("SV_METRICS_TOKEN", default="")


def _networks(variable: str) -> list:
    networks = []
    for net in filter(None, (item.strip() for item in env.list(variable, default=[]))):
        try:
            networks.append(ipaddress.ip_network(net, strict=False))
        except ValueError:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(f"{variable}: {net!r} is not a network") from None
    return networks


METRICS_ALLOWED_NETWORKS: list = _networks("SV_METRICS_ALLOWED_NETWORKS")
# prometheus_client's own variable: where every process keeps its counters, so a scrape of
# any gunicorn worker adds up all of them. Unset: each process counts alone.
METRICS_DIR: str | None = env.str("PROMETHEUS_MULTIPROC_DIR", default=None) or None
# /readyz: how long the database may take to answer, and how old the freshest job worker
# heartbeat may be.
READY_TIMEOUT: float = env.float("SV_READY_TIMEOUT", default=2.0)
WORKER_HEARTBEAT_MAX_AGE: float = env.float("SV_WORKER_HEARTBEAT_MAX_AGE", default=60.0)
# Seconds gunicorn lets in-flight requests, and the job worker its running jobs, finish
# after SIGTERM before cutting them off.
SHUTDOWN_TIMEOUT: int = env.int("SV_SHUTDOWN_TIMEOUT", default=30)
# Jobs one worker process runs at once (email deliveries wait on the network, not the CPU).
WORKER_CONCURRENCY: int = env.int("SV_WORKER_CONCURRENCY", default=4)

# Second factors (issue 18). WebAuthn's relying party: its ID (a registrable domain, e.g.
# example.com) and the origins browsers may sign in from; by default both follow SV_PUBLIC_URL.
_public_host = PUBLIC_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
WEBAUTHN_RP_ID: str = env.str("SV_WEBAUTHN_RP_ID", default=_public_host)
WEBAUTHN_RP_NAME: str = env.str("SV_WEBAUTHN_RP_NAME", default="sv_sdk")
WEBAUTHN_ORIGINS: list[str] = [
    origin.strip().rstrip("/")
    for origin in env.list("SV_WEBAUTHN_ORIGINS", default=[PUBLIC_URL])
    if origin.strip()
]
# Staff and holders of roles flagged requires_mfa must enrol a second factor; False relaxes
# that for development only.
MFA_ENFORCE: bool = env.bool("SV_MFA_ENFORCE", default=True)
# Seconds such a user may go on without a second factor before their sessions are limited.
MFA_GRACE_PERIOD: int = env.int("SV_MFA_GRACE_PERIOD", default=0)
# Seconds a sign-in counts as fresh for sensitive actions.
MFA_REAUTH_WINDOW: int = env.int("SV_MFA_REAUTH_WINDOW", default=10 * 60)

# The better-auth compatible API (issue 19, docs/better-auth.md) ------------------------------
# The secret that signs the `better-auth.session_token` cookie: a team moving from better-auth
# keeps its BETTER_AUTH_SECRET so its users' cookies stay valid. Unset: derived from SECRET_KEY.
BETTER_AUTH_SECRET: str | None = env.str("BETTER_AUTH_SECRET", default=None) or None
