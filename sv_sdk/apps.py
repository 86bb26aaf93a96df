"""The project package as an app: flow-level commands and the pre_migrate hook."""

from django.apps import AppConfig
from django.db.models.signals import pre_migrate


def create_schemas(using="default", plan=None, **kwargs):
    """Create the four schemas so run_syncdb and test databases find them."""
    from django.db import connections

    if plan and all(backwards for _migration, backwards in plan):
        return  # unapplying: the first migrations drop the schemas they created

    from sv_sdk.db.operations import create_schemas_sql

    with connections[using].cursor() as cursor:
        for statement in create_schemas_sql():
            cursor.execute(statement)


class SvSdkConfig(AppConfig):
    name = "sv_sdk"
    verbose_name = "sv_sdk"

    def ready(self):
        from django.apps import apps

        # Registers the OpenAPI extension for StrictSerializer.
        from sv_sdk.api import schema  # noqa: F401

        # pre_migrate is sent once per app with models; one sender is enough.
        pre_migrate.connect(
            create_schemas, sender=apps.get_app_config("auth_app"), dispatch_uid="sv_sdk_schemas"
        )
