"""Settings for the test suite: real PostgreSQL, fast hashing, in-memory mail."""

from sv_sdk.settings.base import *  # noqa: F403

# Argon2 is measured in benchmarks; most tests only need a hash that verifies.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "auth_app.hashers.BetterAuthScryptPasswordHasher",
]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# Examples per API operation in the schemathesis fuzz test (make reliability raises it).
SV_FUZZ_EXAMPLES = 10
# Tests never run collectstatic: serve static files from the apps, as in development,
# instead of warning on every request handler that STATIC_ROOT does not exist.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# Staff in most tests have no second factor; the MFA tests turn enforcement back on.
SV_MFA_ENFORCE = False
