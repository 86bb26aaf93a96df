"""Secret links move out of the outbox's bodies: markers there, the links encrypted in `links`."""

import json
from urllib.parse import parse_qs, urlsplit

from django.db import migrations

import sv_sdk.db.fields
from email_app.rendering import REDACTED, link_marker

_WAITING = ("queued", "sending", "deferred")


def move_secrets(apps, schema_editor):
    """Rows queued before: their links become markers (still to deliver) or [redacted]."""
    EmailSend = apps.get_model("email_app", "EmailSend")
    for send in EmailSend.objects.filter(context__has_key="_secrets").iterator():
        links = {}
        for url in send.context.pop("_secrets"):
            if send.status in _WAITING:
                token = parse_qs(urlsplit(url).query).get("token", [url])[0]
                replacement = link_marker()
                links[replacement] = [url, token]
            else:
                replacement = REDACTED
            send.text_body = send.text_body.replace(url, replacement)
            send.html_body = send.html_body.replace(url, replacement)
        send.links = json.dumps(links) if links else ""
        send.save(update_fields=["context", "text_body", "html_body", "links"])


class Migration(migrations.Migration):
    dependencies = [("email_app", "0005_email_changed_template")]

    operations = [
        migrations.AddField(
            model_name="emailsend",
            name="links",
            field=sv_sdk.db.fields.EncryptedTextField(blank=True, default=""),
        ),
        migrations.RunPython(move_secrets, migrations.RunPython.noop),
    ]
