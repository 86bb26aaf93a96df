"""Uniqueness on email_key, folded by Python, replaces lower(email), folded by PostgreSQL."""

from django.db import migrations, models


class Migration(migrations.Migration):
    # Its own transaction: the keys filled by 0004 are committed before the index is built.
    dependencies = [("auth_app", "0004_user_email_key")]

    operations = [
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(fields=["email_key"], name="users_email_key_uniq"),
        ),
    ]
