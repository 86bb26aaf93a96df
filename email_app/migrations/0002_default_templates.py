"""Ship the default templates: verify-email, reset-password, password-changed, welcome."""

from django.db import migrations

from sv_sdk.ids import new_id


def _html(heading: str, paragraphs: str, button: tuple[str, str] | None = None) -> str:
    action = ""
    if button:
        label, url = button
        action = (
            '<p style="margin:28px 0;"><a href="' + url + '" style="background:#1d4ed8;'
            "color:#ffffff;text-decoration:none;padding:12px 22px;border-radius:6px;"
            'font-weight:600;display:inline-block;">' + label + "</a></p>"
            '<p style="color:#6b7280;font-size:13px;">If the button does not work, copy this '
            'link into your browser:<br><a href="' + url + '" style="color:#1d4ed8;'
            'word-break:break-all;">' + url + "</a></p>"
        )
    return (
        '<!doctype html><html><body style="margin:0;padding:0;background:#f3f4f6;">'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        'style="background:#f3f4f6;padding:32px 0;"><tr><td align="center">'
        '<table role="presentation" width="560" cellpadding="0" cellspacing="0" '
        'style="max-width:560px;background:#ffffff;border-radius:8px;padding:32px;'
        "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#111827;"
        'font-size:15px;line-height:1.6;"><tr><td>'
        '<h1 style="font-size:20px;margin:0 0 16px;">'
        + heading
        + "</h1>"
        + paragraphs
        + action
        + "</td></tr></table></td></tr></table></body></html>"
    )


TEMPLATES = [
    {
        "key": "verify-email",
        "description": "Sent on sign-up and on request: confirms the address. "
        "Variables: user_name, verify_url, expires_hours.",
        "subject": "Confirm your email address",
        "text_body": (
            "Hello {{ user_name }},\n\n"
            "Please confirm your email address by opening this link:\n\n"
            "{{ verify_url }}\n\n"
            "The link works once and expires in {{ expires_hours }} hours. "
            "If you did not create an account, you can ignore this email.\n"
        ),
        "html_body": _html(
            "Confirm your email address",
            "<p>Hello {{ user_name }},</p><p>Please confirm your email address. "
            "The link works once and expires in {{ expires_hours }} hours.</p>",
            ("Confirm email", "{{ verify_url }}"),
        ),
    },
    {
        "key": "reset-password",
        "description": "Sent on a password reset request. "
        "Variables: user_name, reset_url, expires_minutes.",
        "subject": "Reset your password",
        "text_body": (
            "Hello {{ user_name }},\n\n"
            "Someone asked to reset the password of your account. To choose a new one, "
            "open this link:\n\n{{ reset_url }}\n\n"
            "The link works once and expires in {{ expires_minutes }} minutes. "
            "If you did not ask for this, ignore this email: your password stays as it is.\n"
        ),
        "html_body": _html(
            "Reset your password",
            "<p>Hello {{ user_name }},</p><p>Someone asked to reset the password of your "
            "account. The link works once and expires in {{ expires_minutes }} minutes.</p>"
            "<p>If you did not ask for this, ignore this email: your password stays as it is.</p>",
            ("Choose a new password", "{{ reset_url }}"),
        ),
    },
    {
        "key": "password-changed",
        "description": "Sent after a password change or reset. Variables: user_name.",
        "subject": "Your password was changed",
        "text_body": (
            "Hello {{ user_name }},\n\n"
            "The password of your account was just changed. If this was you, "
            "there is nothing to do.\n\n"
            "If it was not you, reset your password at once and contact support.\n"
        ),
        "html_body": _html(
            "Your password was changed",
            "<p>Hello {{ user_name }},</p><p>The password of your account was just changed. "
            "If this was you, there is nothing to do.</p><p><strong>If it was not you</strong>, "
            "reset your password at once and contact support.</p>",
        ),
    },
    {
        "key": "welcome",
        "description": "Sent once the email address is confirmed. Variables: user_name.",
        "subject": "Welcome aboard",
        "text_body": (
            "Hello {{ user_name }},\n\nYour email address is confirmed and your account is ready.\n"
        ),
        "html_body": _html(
            "Welcome aboard",
            "<p>Hello {{ user_name }},</p>"
            "<p>Your email address is confirmed and your account is ready.</p>",
        ),
    },
]


def create_templates(apps, schema_editor):
    EmailTemplate = apps.get_model("email_app", "EmailTemplate")
    for fields in TEMPLATES:
        EmailTemplate.objects.get_or_create(
            key=fields["key"],
            locale="en",
            defaults={**fields, "id": new_id()},
        )


def delete_templates(apps, schema_editor):
    EmailTemplate = apps.get_model("email_app", "EmailTemplate")
    EmailTemplate.objects.filter(key__in=[t["key"] for t in TEMPLATES], locale="en").delete()


class Migration(migrations.Migration):
    dependencies = [("email_app", "0001_initial")]

    operations = [migrations.RunPython(create_templates, delete_templates)]
