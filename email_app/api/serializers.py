"""Output serializers of the email API."""

from django.template import TemplateSyntaxError
from rest_framework import serializers

from email_app.rendering import variables
from email_app.selectors import send_safe_copy


class TemplateOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    key = serializers.CharField()
    locale = serializers.CharField()
    subject = serializers.CharField()
    text_body = serializers.CharField()
    html_body = serializers.CharField()
    description = serializers.CharField()
    version = serializers.IntegerField()
    is_active = serializers.BooleanField()
    variables = serializers.SerializerMethodField(
        help_text="Context variables the subject and bodies use."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_variables(self, template) -> list[str]:
        try:
            return variables(template.subject, template.text_body, template.html_body)
        except TemplateSyntaxError:
            return []


class PreviewOutputSerializer(serializers.Serializer):
    subject = serializers.CharField()
    text = serializers.CharField()
    html = serializers.CharField()
    variables = serializers.ListField(child=serializers.CharField())


class SendOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    to_email = serializers.CharField()
    category = serializers.CharField()
    template = serializers.CharField(source="template.key", default=None)
    user_id = serializers.CharField(allow_null=True)
    subject = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    last_error = serializers.CharField()
    provider = serializers.CharField()
    provider_message_id = serializers.CharField()
    scheduled_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    opened_at = serializers.DateTimeField(allow_null=True)
    clicked_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WebhookEventOutputSerializer(serializers.Serializer):
    provider = serializers.CharField()
    event_type = serializers.CharField()
    event_id = serializers.CharField()
    received_at = serializers.DateTimeField()


class SendDetailOutputSerializer(SendOutputSerializer):
    text_body = serializers.SerializerMethodField()
    html_body = serializers.SerializerMethodField()
    context = serializers.SerializerMethodField()
    events = WebhookEventOutputSerializer(source="webhooks.all", many=True)

    # Token links stay hidden until delivery redacts them for good: the safe copy is
    # made once per send and read by the three fields.
    def to_representation(self, send):
        self._safe_copy = send_safe_copy(send)
        return super().to_representation(send)

    def get_text_body(self, send) -> str:
        return self._safe_copy["text_body"]

    def get_html_body(self, send) -> str:
        return self._safe_copy["html_body"]

    def get_context(self, send) -> dict:
        return self._safe_copy["context"]


class PreferenceOutputSerializer(serializers.Serializer):
    category = serializers.CharField()
    subscribed = serializers.BooleanField()
    essential = serializers.BooleanField(help_text="Security and account email is always sent.")


class PreferencesOutputSerializer(serializers.Serializer):
    preferences = PreferenceOutputSerializer(many=True)


class UnsubscribeOutputSerializer(serializers.Serializer):
    category = serializers.CharField()
    subscribed = serializers.BooleanField()
