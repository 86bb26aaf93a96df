"""The ESPs' tracking webhook URLs (`/webhooks/anymail/<provider>/tracking/`)."""

from django.urls import path

from .webhooks import tracking_webhook

urlpatterns = [
    path("<str:provider>/tracking/", tracking_webhook, name="email_tracking_webhook"),
]
