"""Send one test email through the outbox and report what the backend said."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from email_app import services
from email_app.models import Category, EmailSend
from sv_sdk.commands import error_message
from sv_sdk.errors import ApplicationError


class Command(BaseCommand):
    help = "Queue a test email to ADDRESS and deliver it at once, to check the email settings."

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, help="Address that receives the test email.")
        parser.add_argument(
            "--queue-only",
            action="store_true",
            help="Leave delivery to the worker instead of delivering from this command"
            " (default: off).",
        )

    def handle(self, *args, to, queue_only, **options):
        address = to.strip()
        try:
            validate_email(address)
        except ValidationError:
            raise CommandError(f"Not a valid email address: {address!r}") from None
        try:
            with transaction.atomic(durable=True):
                send = services.email_queue(
                    to_email=address,
                    category=Category.ACCOUNT,
                    template_key="test-email",
                    context={
                        "sent_at": timezone.now().strftime("%Y-%m-%d %H:%M:%S UTC"),
                        "provider": settings.EMAIL_BACKEND.rsplit(".", 2)[-2],
                    },
                )
        except ApplicationError as exc:
            raise CommandError(error_message(exc)) from None
        if queue_only:
            self.stdout.write(f"Queued email {send.pk} to {address}; the worker delivers it.")
            return
        try:
            services.email_deliver(send_id=send.pk)
        except services.DeliveryDeferred:
            pass  # recorded on the send; its job retries later
        send = EmailSend.objects.get(pk=send.pk)
        if send.status != EmailSend.Status.SENT:
            raise CommandError(
                f"Email {send.pk} to {address} was not sent ({send.status}): {send.last_error}"
            )
        self.stdout.write(
            f"Sent email {send.pk} to {address} via {send.provider}"
            f" (message id {send.provider_message_id})."
        )
