"""Ship the `test-email` template that `manage.py send_test_email` sends."""

import importlib

from django.db import migrations

from sv_sdk.ids import new_id

_defaults = importlib.import_module("email_app.migrations.0002_default_templates")

TEMPLATE = {
    "key": "test-email",
    "description": "Sent by `manage.py send_test_email` to check the email configuration. "
    "Variables: sent_at, provider.",
    "subject": "Test email from sv_sdk",
    "text_body": (
        "Hello,\n\n"
        "This is a test email sent at {{ sent_at }} through the {{ provider }} backend.\n"
        "If you can read it, outgoing email works.\n"
    ),
    "html_body": _defaults._html(
        "Outgoing email works",
        "<p>Hello,</p><p>This is a test email sent at {{ sent_at }} through the "
        "<strong>{{ provider }}</strong> backend.</p>"
        "<p>If you can read it, outgoing email works.</p>",
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
    dependencies = [("email_app", "0003_send_claimed_at_and_suppression_index")]

    operations = [migrations.RunPython(create_template, delete_template)]
