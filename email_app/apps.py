from django.apps import AppConfig


class EmailAppConfig(AppConfig):
    name = "email_app"
    verbose_name = "Email"
