"""The ESPs' tracking webhook URLs (`/webhooks/anymail/<provider>/tracking/`)."""

from django.urls import path

from .webhooks import tracking_webhook, webhook_not_found

urlpatterns = [
    path("<str:provider>/tracking/", tracking_webhook, name="email_tracking_webhook"),
    # Anything else under the webhooks prefix (inbound, a typo): a problem, not an HTML page.
    path("<path:rest>", webhook_not_found),
]
