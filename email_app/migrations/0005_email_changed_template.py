"""Ship the `email-changed` template: the notice to a user's old address (platform_app.flows)."""

import importlib

from django.db import migrations

from sv_sdk.ids import new_id

_defaults = importlib.import_module("email_app.migrations.0002_default_templates")

TEMPLATE = {
    "key": "email-changed",
    "description": "Sent to the old address when someone changes a user's email address. "
    "Variables: user_name, new_email.",
    "subject": "Your email address was changed",
    "text_body": (
        "Hello {{ user_name }},\n\n"
        "The email address of your account was changed to {{ new_email }}. "
        "Mail about the account now goes there.\n\n"
        "If you did not ask for this, contact support at once: someone else may be "
        "trying to take over your account.\n"
    ),
    "html_body": _defaults._html(
        "Your email address was changed",
        "<p>Hello {{ user_name }},</p><p>The email address of your account was changed to "
        "<strong>{{ new_email }}</strong>. Mail about the account now goes there.</p>"
        "<p>If you did not ask for this, contact support "
        "at once: someone else may be trying to take over your account.</p>",
    ),
}


def create_template(apps, schema_editor):
    EmailTemplate = apps.get_model("email_app", "EmailTemplate")
    EmailTemplate.objects.get_or_create(
        key=TEMPLATE["key"], locale="en", defaults={**TEMPLATE, "id": new_id()}
    )


def delete_template(apps, schema_editor):
    EmailTemplate = apps.get_model("email_app", "EmailTemplate")
    EmailTemplate.objects.filter(key=TEMPLATE["key"], locale="en").delete()


class Migration(migrations.Migration):
    dependencies = [("email_app", "0004_test_email_template")]

    operations = [migrations.RunPython(create_template, delete_template)]
