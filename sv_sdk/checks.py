"""System checks for the steps a deployment must not skip."""

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages


def static_manifest_missing() -> str | None:
    """Why pages would fail for want of collected static files, or None.

    With a manifest storage (whitenoise's, the base settings') and DEBUG off, every
    {% static %} tag looks its file up in STATIC_ROOT's manifest; without one the
    lookup raises, and every admin page becomes a 500.
    """
    storage = storages["staticfiles"]
    if settings.DEBUG or not isinstance(storage, ManifestFilesMixin):
        return None
    manifest = Path(storage.location) / storage.manifest_name
    if manifest.exists():
        return None
    return (
        f"Static files are not collected: {manifest} does not exist. Run "
        "`python manage.py collectstatic --no-input` before serving (make run and the "
        "Dockerfile do)."
    )


@checks.register(checks.Tags.staticfiles, deploy=True)
def static_manifest_check(app_configs, **kwargs):
    problem = static_manifest_missing()
    return [checks.Error(problem, id="sv_sdk.E001")] if problem else []


def require_collected_static() -> None:
    """Refuse to start serving without collected static files (called by sv_sdk.wsgi)."""
    problem = static_manifest_missing()
    if problem:
        raise ImproperlyConfigured(problem)
