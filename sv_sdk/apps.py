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
        from corsheaders.signals import check_request_enabled
        from django.apps import apps

        from sv_sdk import checks  # noqa: F401 (registers the deployment checks)

        # Registers the OpenAPI extension for StrictSerializer.
        from sv_sdk.api import schema  # noqa: F401
        from sv_sdk.net import cors_allowed

        # CORS follows SV_TRUSTED_ORIGINS as it is at each request (docs/better-auth.md).
        check_request_enabled.connect(cors_allowed, dispatch_uid="sv_sdk_cors")

        # pre_migrate is sent once per app with models; one sender is enough.
        pre_migrate.connect(
            create_schemas, sender=apps.get_app_config("auth_app"), dispatch_uid="sv_sdk_schemas"
        )
