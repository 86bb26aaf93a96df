"""Rate-limit keys long enough for a scope, an IPv6 address and a whole email key."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("auth_app", "0005_user_email_key_unique"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ratelimit",
            name="key",
            field=models.CharField(max_length=400, primary_key=True, serialize=False),
        ),
    ]
