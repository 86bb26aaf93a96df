"""Queued emails, made through the outbox service: a welcome email unless told otherwise."""

import factory

from email_app import services
from email_app.models import EmailSend


class EmailSendFactory(factory.Factory):
    class Meta:
        model = EmailSend

    to_email = factory.Sequence(lambda n: f"reader{n}@example.com")
    category = "product"
    template_key = "welcome"
    context = factory.Dict({"user_name": "Reader"})

    @classmethod
    def _create(cls, model_class, **kwargs):
        return services.email_queue(**kwargs)
