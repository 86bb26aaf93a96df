"""The one module that reads the process environment."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DATABASE_URL: str | None = env.str("DATABASE_URL", default=None) or None
# Migrations may run as a more privileged (owner) role than the application.
DATABASE_MIGRATE_URL: str | None = env.str("DATABASE_MIGRATE_URL", default=None) or None
DATABASE_POOL_SIZE: int = env.int("DATABASE_POOL_SIZE", default=20)
SECRET_KEY: str | None = env.str("SECRET_KEY", default=None) or None
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
