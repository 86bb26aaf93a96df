"""Settings shared by every environment; values come from sv_sdk.env."""

import secrets

import environ

from sv_sdk import env as sv_env
from sv_sdk.logs import logging_config
from sv_sdk.net import trusted_networks

BASE_DIR = sv_env.BASE_DIR
DEBUG = sv_env.DEBUG
ALLOWED_HOSTS = sv_env.ALLOWED_HOSTS


def _development_secret_key() -> str:
    # Without SECRET_KEY, development keeps a random key in the data directory
    # so sessions survive restarts; production settings refuse to start instead.
    path = sv_env.DATA_DIR / "secret_key"
    if not path.exists():
        sv_env.DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = sv_env.SECRET_KEY or _development_secret_key()

INSTALLED_APPS = [
    # First, so its createsuperuser (through user_onboard) wins over Django's.
    "platform_app.apps.PlatformConfig",
    "sv_sdk.apps.SvSdkConfig",
    "auth_app",
    "permissions_app",
    "email_app",
    "audit_app",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "corsheaders",
    "procrastinate.contrib.django",
]

MIDDLEWARE = [
    # First: probes answer before the host check, the https redirect and the request log.
    "sv_sdk.health.ProbeMiddleware",
    # Before SecurityMiddleware, which may believe X-Forwarded-Proto (production settings).
    "sv_sdk.net.UntrustedForwardedProtoMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "audit_app.middleware.AuditContextMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A log line and the request metrics for everything but probes and static files.
    "sv_sdk.logs.RequestLogMiddleware",
    # Reads after one's own writes: the WAL position in and out (sv_sdk.db.replicas).
    "sv_sdk.db.replicas.ReadYourWritesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before CommonMiddleware, so a preflight is answered as it is (django-cors-headers' rule).
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "platform_app.urls"
WSGI_APPLICATION = "sv_sdk.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "sv_sdk" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict:
    if sv_env.DATABASE_URL:
        db = environ.Env.db_url_config(sv_env.DATABASE_URL)
    else:
        from sv_sdk.db.embedded import ensure_server

        db = ensure_server(sv_env.DATA_DIR)
    db["ENGINE"] = "sv_sdk.db"
    db["OPTIONS"] = {
        **db.get("OPTIONS", {}),
        "pool": {
            "min_size": 1,
            "max_size": sv_env.DATABASE_POOL_SIZE,
            "timeout": sv_env.DATABASE_POOL_TIMEOUT,
        },
    }
    if sv_env.DATABASE_DIRECT_URL:
        # DATABASE_URL names a transaction-mode pooler (docs/pooling.md). A pooled connection
        # is checked before use, so one cut by a pooler restart is replaced while the request
        # waits instead of failing it; and a server-side cursor outside a transaction would
        # outlive the server connection it was declared on.
        db["CONN_HEALTH_CHECKS"] = True  # with a pool: psycopg_pool's check on every checkout
        db["DISABLE_SERVER_SIDE_CURSORS"] = True
    # A pool replaces persistent connections; Django refuses both at once.
    db["CONN_MAX_AGE"] = 0
    return db


def _replicas() -> dict:
    replicas = {}
    for number, url in enumerate(sv_env.DATABASE_REPLICA_URLS, start=1):
        db = environ.Env.db_url_config(url)
        db["ENGINE"] = "sv_sdk.db"
        options = db.get("OPTIONS", {})
        # A read on a replica can wait on a lock its replay holds (a table rewritten or
        # created on the primary), for as long as replay is paused or delayed: past a second
        # it fails, and the lag-tolerant view runs again on the primary.
        lock_timeout = "-c lock_timeout=1000"
        db["OPTIONS"] = {
            **options,
            "connect_timeout": SV_REPLICA_CONNECT_TIMEOUT,
            "options": f"{options.get('options', '')} {lock_timeout}".strip(),
        }
        # No pool: a pool keeps idle connections that all break when a replica restarts and
        # refills with back-off; a connection per thread is dropped after an error instead
        # and opened again on next use.
        db["CONN_MAX_AGE"] = 600
        # A test run reads the replica's copy of the test database.
        db["TEST"] = {"MIRROR": "default"}
        replicas[f"replica_{number}"] = db
    return replicas


# Read replicas (docs/scaling.md): sv_sdk.db.replicas routes lag-tolerant reads to them.
SV_REPLICA_CONNECT_TIMEOUT = 2  # seconds; libpq treats less than 2 as 2
DATABASES = {"default": _database(), **_replicas()}
SV_DATABASE_REPLICAS = [alias for alias in DATABASES if alias != "default"]
SV_REPLICA_MAX_LAG = sv_env.REPLICA_MAX_LAG
SV_REPLICA_CHECK_INTERVAL = sv_env.REPLICA_CHECK_INTERVAL
DATABASE_ROUTERS = ["sv_sdk.db.replicas.ReplicaRouter"]
# sv_sdk.db.prepared: how many hot reads each connection keeps prepared (0: none).
SV_PREPARED_STATEMENTS = sv_env.DATABASE_PREPARED_STATEMENTS
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "auth_app.User"
AUTHENTICATION_BACKENDS = [
    "auth_app.backends.EmailBackend",
    # has_perm (and so the admin) follows roles.
    "permissions_app.backends.RoleBackend",
]
PASSWORD_HASHERS = [
    # Argon2id, 46 MiB, t=1, p=1 (docs/decisions.md); older hashes are redone at sign-in.
    "auth_app.hashers.Argon2idPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    # Hashes imported from better-auth (import_better_auth); rehashed at first sign-in.
    "auth_app.hashers.BetterAuthScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SILENCED_SYSTEM_CHECKS = [
    # The email is unique through its comparison key (auth.users.email_key,
    # see auth_app/addresses.py), which Django's check does not know about.
    "auth.W004",
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

vars().update(sv_env.email_config())
DEFAULT_FROM_EMAIL = sv_env.DEFAULT_FROM_EMAIL
SERVER_EMAIL = sv_env.DEFAULT_FROM_EMAIL

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["auth_app.authentication.SessionTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["sv_sdk.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "sv_sdk.api.exceptions.problem_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "sv_sdk.api.pagination.NewestFirstCursorPagination",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SV_API_MAX_BODY_BYTES = 64 * 1024
SPECTACULAR_SETTINGS = {
    "TITLE": "sv_sdk API",
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "sv_sdk.api.schema.add_problem_responses",
    ],
}


LOGGING = logging_config(json_lines=sv_env.LOG_FORMAT == "json", level=sv_env.LOG_LEVEL)
# Authlib logs PKCE verifiers at DEBUG: never, whatever LOG_LEVEL says.
LOGGING["loggers"]["authlib"] = {"level": "INFO"}

# Project settings.
SV_PUBLIC_URL = sv_env.PUBLIC_URL
SV_DATA_DIR = sv_env.DATA_DIR
SV_ADMIN_EMAIL = sv_env.ADMIN_EMAIL
SV_EMAIL_VERIFICATION_TTL = 24 * 60 * 60
SV_EMAIL_MAX_ATTEMPTS = 5
SV_DEFAULT_LOCALE = "en"

# Sessions: sliding expiry, refreshed at most once per SV_SESSION_UPDATE_AGE of use,
# never past SV_SESSION_MAX_AGE after sign-in.
SV_SESSION_TTL = 7 * 24 * 60 * 60
SV_SESSION_UPDATE_AGE = 24 * 60 * 60
SV_SESSION_MAX_AGE = 30 * 24 * 60 * 60
SV_SESSION_COOKIE_NAME = "sv_session"
SV_SESSION_COOKIE_SECURE = False

# Identity: token lifetimes and rate limits, as (requests, window seconds) per key.
SV_PASSWORD_RESET_TTL = 60 * 60
SV_RATE_LIMITS = {
    "sign_in": (3, 10),
    "sign_up": (3, 10),
    "forgot_password": (3, 60),
    "reset_password": (3, 60),
    "verify_email": (3, 60),
    "send_verification": (3, 60),
    "change_password": (3, 10),
    # Mails that anyone can request for an address (forgot-password, send-verification),
    # per recipient per day; past it the request still answers 202 and nothing is sent.
    "mail_per_recipient": (10, 24 * 60 * 60),
    "mfa": (10, 10),
}
# Sign-in lockout: after this many failures from one IP for one email, wait
# SV_LOCKOUT_BASE_WAIT seconds, doubling with each further failure, at most SV_LOCKOUT_MAX_WAIT.
SV_LOCKOUT_THRESHOLD = 5
SV_LOCKOUT_BASE_WAIT = 30
SV_LOCKOUT_MAX_WAIT = 15 * 60
# Failures older than this are forgotten.
SV_LOCKOUT_RESET_AFTER = 60 * 60

# The Django admin's sessions are rows in auth.sessions too.
SESSION_ENGINE = "auth_app.session_store"
SESSION_COOKIE_AGE = SV_SESSION_TTL
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"


def _same_database(url: str | None, variable: str) -> dict:
    # The connection settings of another URL for the default database, which a command swaps
    # into the default connection: `migrate` runs as the owner role (DATABASE_MIGRATE_URL), the
    # job worker goes around the pooler (DATABASE_DIRECT_URL). The database name stays the
    # default's, which keeps test databases working.
    if not url:
        return {}
    from django.core.exceptions import ImproperlyConfigured

    db = environ.Env.db_url_config(url)
    if db.get("NAME") != DATABASES["default"]["NAME"]:
        # No URL in the message: it would carry a password.
        raise ImproperlyConfigured(f"{variable} must name the same database as DATABASE_URL")
    return {
        "USER": db.get("USER", ""),
        "PASSWORD": db.get("PASSWORD", ""),
        "HOST": db.get("HOST", ""),
        "PORT": db.get("PORT", ""),
        "OPTIONS": db.get("OPTIONS", {}),
    }


SV_MIGRATE_DATABASE = _same_database(sv_env.DATABASE_MIGRATE_URL, "DATABASE_MIGRATE_URL")
SV_DIRECT_DATABASE = _same_database(sv_env.DATABASE_DIRECT_URL, "DATABASE_DIRECT_URL")


# Keys for secret columns (sv_sdk.db.fields.EncryptedTextField): the first encrypts, every
# one decrypts. Without SV_ENCRYPTION_KEYS, development derives one from SECRET_KEY;
# production settings refuse to start.
def _encryption_keys() -> list[str]:
    from sv_sdk.crypto import development_key

    return sv_env.ENCRYPTION_KEYS or [development_key(SECRET_KEY)]


SV_ENCRYPTION_KEYS = _encryption_keys()

# Email (issue 6): an ESP through django-anymail when SV_EMAIL_PROVIDER is set, and the
# outbox's delivery rules.
vars().update(sv_env.anymail_config())
# The ESP whose tracking webhook is mounted (email_app.webhooks.tracking_webhook); "" for none.
SV_EMAIL_PROVIDER = sv_env.EMAIL_PROVIDER
EMAIL_TIMEOUT = sv_env.EMAIL_TIMEOUT
# A send left in `sending` this long (its worker died) is claimed again; far above EMAIL_TIMEOUT.
SV_EMAIL_SENDING_TIMEOUT = 10 * 60
# Transient failures wait 30 s, 60 s, 120 s, ... until SV_EMAIL_MAX_ATTEMPTS.
SV_EMAIL_RETRY_BASE_SECONDS = 30
# The ESP whose webhooks are accepted (others answer 404): the sending one, plus any named in
# SV_EMAIL_WEBHOOK_PROVIDERS (an ESP's SMTP relay with its webhooks).
SV_EMAIL_WEBHOOK_PROVIDERS = sv_env.EMAIL_WEBHOOK_PROVIDERS
# Soft bounces (full mailbox, temporary failure) suppress an address only when this many sends
# to it soft-bounced within the window, and then only for SV_EMAIL_SOFT_BOUNCE_SUPPRESSION.
SV_EMAIL_SOFT_BOUNCE_LIMIT = sv_env.EMAIL_SOFT_BOUNCE_LIMIT
SV_EMAIL_SOFT_BOUNCE_WINDOW = sv_env.EMAIL_SOFT_BOUNCE_WINDOW
SV_EMAIL_SOFT_BOUNCE_SUPPRESSION = sv_env.EMAIL_SOFT_BOUNCE_SUPPRESSION
# Amazon SNS signing certificates and subscription confirmations are fetched only from URLs
# matching this (AWS's SNS endpoints); not read from the environment: tests alone change it.
SV_SNS_URL_PATTERN = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"
# Seconds before fetching an SNS certificate or confirmation URL gives up.
SV_SNS_FETCH_TIMEOUT = 10

# Audit (issue 5): keys of the per-row MACs that audit_verify checks (see docs/audit.md).
SV_AUDIT_KEYS = sv_env.AUDIT_KEYS
SV_RATE_LIMITS_ENABLED = sv_env.RATE_LIMITS_ENABLED

# Reverse proxies trusted to say who the client is (sv_sdk.net.client_ip); checked here so a
# malformed entry stops the process at start, not at its first request.
SV_TRUSTED_PROXIES = sv_env.TRUSTED_PROXIES
trusted_networks(tuple(SV_TRUSTED_PROXIES))

# Admin (issue 8): sv_sdk's admin site, with the operators' dashboard on the index and a
# login that is rate limited, locked out and audited like the API's sign-in.
INSTALLED_APPS[INSTALLED_APPS.index("django.contrib.admin")] = (
    "platform_app.admin_apps.SvAdminConfig"
)

# Sign-in with OpenID Connect / OAuth providers (issue 17, docs/oauth.md).
SV_OAUTH_PROVIDERS = sv_env.OAUTH_PROVIDERS
# Where a sign-in may return the browser: these origins (scheme://host[:port]) only.
SV_TRUSTED_ORIGINS = sv_env.TRUSTED_ORIGINS or [SV_PUBLIC_URL]
# The same origins are the front ends allowed to call both APIs with credentials (CORS) and
# to send cookie-authenticated writes (Django's CSRF check for /api/v1, the Origin check of
# /api/auth): one list of "our front ends" (docs/decisions.md).
# django-cors-headers asks sv_sdk.net.cors_allowed (its check_request_enabled signal) rather
# than keeping a copy of the list.
CORS_ALLOWED_ORIGINS: list[str] = []
CORS_ALLOW_CREDENTIALS = True
CORS_URLS_REGEX = r"^/api/(v1|auth)/"
# A bearer client reads its token from set-auth-token (the better-auth API); a rate-limited
# one reads how long to wait (better-auth's client reads X-Retry-After).
CORS_EXPOSE_HEADERS = ["set-auth-token", "Retry-After", "X-Retry-After"]
CSRF_TRUSTED_ORIGINS = SV_TRUSTED_ORIGINS
# A sign-in in flight (state, nonce, PKCE verifier) lives this long, and is used once.
SV_OAUTH_STATE_TTL = 10 * 60
# The one-time code an SPA or mobile app exchanges for its bearer token.
SV_OAUTH_EXCHANGE_TTL = 60
# Seconds each call to a provider may take (discovery, token, user info).
SV_OAUTH_TIMEOUT = 5.0
SV_OAUTH_COOKIE_NAME = "sv_oauth"

# Operations (issue 25, docs/operations.md): who may scrape /metrics, what /readyz allows.
SV_METRICS_TOKEN = sv_env.METRICS_TOKEN
SV_METRICS_ALLOWED_NETWORKS = sv_env.METRICS_ALLOWED_NETWORKS
SV_READY_TIMEOUT = sv_env.READY_TIMEOUT
SV_WORKER_HEARTBEAT_MAX_AGE = sv_env.WORKER_HEARTBEAT_MAX_AGE
# The job worker finishes its running jobs on SIGTERM, within the
# same time gunicorn gives in-flight requests.
PROCRASTINATE_WORKER_DEFAULTS = {
    "shutdown_graceful_timeout": sv_env.SHUTDOWN_TIMEOUT,
    # Several deliveries at once: each waits on the mail server and the database.
    "concurrency": sv_env.WORKER_CONCURRENCY,
}

# Second factors (issue 18, docs/mfa.md).
SV_WEBAUTHN_RP_ID = sv_env.WEBAUTHN_RP_ID
SV_WEBAUTHN_RP_NAME = sv_env.WEBAUTHN_RP_NAME
SV_WEBAUTHN_ORIGINS = sv_env.WEBAUTHN_ORIGINS
SV_WEBAUTHN_CHALLENGE_TTL = 5 * 60
SV_MFA_ISSUER = "sv_sdk"
SV_MFA_TOKEN_TTL = 5 * 60
SV_MFA_ENFORCE = sv_env.MFA_ENFORCE
SV_MFA_GRACE_PERIOD = sv_env.MFA_GRACE_PERIOD
SV_MFA_REAUTH_WINDOW = sv_env.MFA_REAUTH_WINDOW


# The better-auth compatible API at /api/auth/ (issue 19, docs/better-auth.md): the secret that
# signs its session cookie, a team's old BETTER_AUTH_SECRET to keep their users' cookies valid.
def _better_auth_secret() -> str:
    if sv_env.BETTER_AUTH_SECRET:
        return sv_env.BETTER_AUTH_SECRET
    import hashlib

    return hashlib.sha256(f"sv_sdk better-auth cookie {SECRET_KEY}".encode()).hexdigest()


SV_BETTER_AUTH_SECRET = _better_auth_secret()
