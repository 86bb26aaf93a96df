"""Settings for `make bench`: the base settings, pointed at a throwaway database."""

from sv_sdk.settings.base import *  # noqa: F403

# The benchmark creates, migrates and drops this database on the server the
# base settings point at, so the developer's own database is never touched.
BENCH_DATABASE_NAME = f"{DATABASES['default']['NAME']}_bench"  # noqa: F405
DATABASES["default"]["NAME"] = BENCH_DATABASE_NAME  # noqa: F405

# With DEBUG on, Django keeps every query in memory and the run slows as it goes.
DEBUG = False
# Argon2 stays the first hasher on purpose: its cost is reported next to the flow.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

# For the HTTP benchmark's floor: a bare DRF endpoint with DRF's own
# TokenAuthentication, served from benchmarks/urls.py. Bench-only; the bench
# database migrates authtoken's table.
INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework.authtoken"]  # noqa: F405
ROOT_URLCONF = "benchmarks.urls"
