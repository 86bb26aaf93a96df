"""Every option of the project's own commands has help naming its default, and a README row."""

import re
from pathlib import Path

from django.conf import settings
from django.core.management import get_commands, load_command_class
from django.core.management.base import BaseCommand

PROJECT_APPS = ("sv_sdk", "auth_app", "permissions_app", "email_app", "audit_app", "platform_app")
# Django's own commands that the project extends keep Django's options and help.
DJANGOS = {"migrate", "createsuperuser"}


def _project_options():
    common = {action.dest for action in BaseCommand().create_parser("manage.py", "x")._actions}
    for name, app in sorted(get_commands().items()):
        if app not in PROJECT_APPS or name in DJANGOS:
            continue
        parser = load_command_class(app, name).create_parser("manage.py", name)
        for action in parser._actions:
            if action.dest not in common and action.option_strings:
                yield name, action


def test_every_optional_option_has_help_that_names_its_default():
    missing = [
        f"{name} {action.option_strings[0]}"
        for name, action in _project_options()
        if not action.required and "default" not in (action.help or "").lower()
    ]
    assert missing == []


def test_the_readme_command_table_lists_every_option():
    rows = [
        line
        for line in (Path(settings.BASE_DIR) / "README.md").read_text().splitlines()
        if line.startswith("| `")
    ]
    unlisted = [
        f"{name} {action.option_strings[-1]}"
        for name, action in _project_options()
        if not any(
            re.search(rf"`{name}[ `]", row) and any(o in row for o in action.option_strings)
            for row in rows
        )
    ]
    assert unlisted == []
