"""Background jobs of the email domain (Procrastinate)."""

from django.conf import settings
from django.db import close_old_connections
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from . import services


@app.task(
    name="email.deliver",
    queue="email",
    retry=RetryStrategy(max_attempts=settings.SV_EMAIL_MAX_ATTEMPTS - 1, exponential_wait=2),
)
def email_deliver(send_id: str) -> None:
    # Jobs run on worker threads: hand the connection back to the pool after
    # each one, as Django does at the end of a request.
    close_old_connections()
    try:
        services.email_deliver(send_id=send_id)
    finally:
        close_old_connections()
