from django.apps import AppConfig


class EmailAppConfig(AppConfig):
    name = "email_app"
    verbose_name = "Email"

    def ready(self):
        from sv_sdk.metrics import register_scrape_collector

        # Connects the receiver of anymail's tracking signal.
        from . import webhooks  # noqa: F401
        from .metrics import OutboxCollector

        register_scrape_collector(OutboxCollector())
