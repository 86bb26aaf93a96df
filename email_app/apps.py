from django.apps import AppConfig


class EmailAppConfig(AppConfig):
    name = "email_app"
    verbose_name = "Email"

    def ready(self):
        # Connects the receiver of anymail's tracking signal.
        from . import webhooks  # noqa: F401
