"""Create the default roles: admin, user and auditor."""

from django.db import migrations

from sv_sdk.ids import new_id

ROLES = {
    "admin": ("Full access", ["*"]),
    "user": ("What a signed-up user needs for their own data", ["profile:read", "profile:write"]),
    "auditor": ("Reads and exports the audit log", ["audit:read", "audit:export"]),
}


def create_roles(apps, schema_editor):
    Role = apps.get_model("permissions_app", "Role")
    for name, (description, permissions) in ROLES.items():
        Role.objects.get_or_create(
            name=name,
            defaults={
                "id": new_id(),
                "description": description,
                "permissions": permissions,
                "is_system": True,
            },
        )


def delete_roles(apps, schema_editor):
    Role = apps.get_model("permissions_app", "Role")
    Role.objects.filter(name__in=ROLES, is_system=True).delete()


class Migration(migrations.Migration):
    dependencies = [("permissions_app", "0001_initial")]

    operations = [migrations.RunPython(create_roles, delete_roles)]
