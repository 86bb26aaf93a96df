"""Normalise stored emails and fill users.email_key, the one comparison key (issue 15, class 4).

The lower(email) index goes first; 0005 makes email_key unique, in its own transaction.

Works on a populated table. An address that has no normal form (a non-ASCII local
part) keeps its email and gets a key no look-up can produce, as does every later
account that normalises to an address an older account already has: both stay
reachable by id for an operator to resolve, and this migration names them.
"""

from django.db import migrations, models

from auth_app.addresses import email_key, email_normalize
from sv_sdk.errors import ValidationFailed

_BATCH = 1000


def fill_email_keys(apps, schema_editor) -> None:
    user_model = apps.get_model("auth_app", "User")
    users = user_model.objects.using(schema_editor.connection.alias)
    seen: set[str] = set()
    unresolved: list[str] = []
    pending = []
    for user in users.order_by("created_at", "id").only("id", "email").iterator(_BATCH):
        # No look-up produces a key with a space in it; such rows keep their email as stored.
        try:
            normal = email_normalize(user.email)
        except ValidationFailed:
            key, reason = f"invalid {user.pk}", "no normal form"
        else:
            key, reason = email_key(normal), ""
            if key in seen:
                key, reason = f"duplicate {user.pk}", "same address as an older account"
            else:
                user.email = normal
        if reason:
            unresolved.append(f"{user.pk} ({reason})")
        seen.add(key)
        user.email_key = key
        pending.append(user)
        if len(pending) >= _BATCH:
            users.bulk_update(pending, ["email", "email_key"])
            pending = []
    users.bulk_update(pending, ["email", "email_key"])
    if unresolved:
        print(  # noqa: T201 (a migration's only way to reach the operator)
            "\n  auth_app.0004: these users cannot sign in by email until their address is "
            "changed: " + ", ".join(unresolved)
        )


class Migration(migrations.Migration):
    dependencies = [("auth_app", "0003_encrypt_account_tokens")]

    operations = [
        # First: an older account's normal form may equal a newer one's stored address.
        migrations.RemoveConstraint(model_name="user", name="users_email_lower_uniq"),
        migrations.AddField(
            model_name="user",
            name="email_key",
            field=models.CharField(default="", editable=False, max_length=254),
            preserve_default=False,
        ),
        migrations.RunPython(fill_email_keys, migrations.RunPython.noop, elidable=False),
    ]
