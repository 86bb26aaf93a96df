"""Serving before `collectstatic` stops at start-up with the step's name, not a bare 500 later."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from sv_sdk.checks import require_collected_static

MANIFEST_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


@pytest.fixture
def production_static(settings, tmp_path):
    settings.DEBUG = False
    settings.STORAGES = MANIFEST_STORAGES
    settings.STATIC_ROOT = tmp_path / "staticfiles"
    return settings.STATIC_ROOT


def test_starting_without_collected_static_files_names_the_missing_step(production_static):
    with pytest.raises(ImproperlyConfigured, match="collectstatic"):
        require_collected_static()


def test_manage_py_check_deploy_reports_the_missing_collectstatic(production_static):
    with pytest.raises(SystemCheckError, match=r"sv_sdk\.E001.*collectstatic"):
        call_command("check", deploy=True)


def test_after_collectstatic_the_app_starts(production_static):
    call_command("collectstatic", interactive=False, verbosity=0)
    require_collected_static()
    call_command("check", deploy=True)


def test_development_settings_need_no_collected_files(settings, tmp_path):
    settings.DEBUG = True
    settings.STORAGES = MANIFEST_STORAGES
    settings.STATIC_ROOT = tmp_path / "nothing-here"
    require_collected_static()
