"""Security templates greet without the name an unverified address's signer-up chose.

verify-email goes to an address nobody has proven yet: it no longer shows the name.
reset-password and password-changed show it only when the flows give one, which they
do for verified addresses only. A template an operator has edited is left as it is.
"""

import importlib

from django.db import migrations

_defaults = importlib.import_module("email_app.migrations.0002_default_templates")

_NAMED = "Hello {{ user_name }},"
_GREETINGS = {
    "verify-email": "Hello,",
    "reset-password": "Hello{% if user_name %} {{ user_name }}{% endif %},",
    "password-changed": "Hello{% if user_name %} {{ user_name }}{% endif %},",
}
_DESCRIPTIONS = {
    "verify-email": "Sent on sign-up and on request: confirms the address. "
    "Variables: verify_url (a secret link), expires_hours; user_name is always empty.",
    "reset-password": "Sent on a password reset request. Variables: reset_url (a secret "
    "link), expires_minutes, user_name (empty unless the address is verified).",
    "password-changed": "Sent after a password change or reset. "
    "Variables: user_name (empty unless the address is verified).",
}
_SOURCES = ("subject", "text_body", "html_body")


def _versions():
    """(key, shipped fields, new fields) of each security template."""
    for shipped in _defaults.TEMPLATES:
        key = shipped["key"]
        if key in _GREETINGS:
            new = {field: shipped[field].replace(_NAMED, _GREETINGS[key]) for field in _SOURCES}
            yield key, shipped, {**new, "description": _DESCRIPTIONS[key]}


def _replace(apps, *, forward: bool):
    EmailTemplate = apps.get_model("email_app", "EmailTemplate")
    for key, shipped, new in _versions():
        old, wanted = (shipped, new) if forward else (new, shipped)
        template = EmailTemplate.objects.filter(key=key, locale="en").first()
        if template is None or any(getattr(template, f) != old[f] for f in _SOURCES):
            continue  # edited by an operator: theirs to change
        for field in (*_SOURCES, "description"):
            setattr(template, field, wanted[field])
        template.version += 1
        template.save()


def update_templates(apps, schema_editor):
    _replace(apps, forward=True)


def restore_templates(apps, schema_editor):
    _replace(apps, forward=False)


class Migration(migrations.Migration):
    dependencies = [("email_app", "0006_send_links")]

    operations = [migrations.RunPython(update_templates, restore_templates)]
