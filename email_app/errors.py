"""Email errors, each with its HTTP status and stable code."""

from sv_sdk.errors import ApplicationError, Conflict, NotFound, ValidationFailed


class TemplateNotFound(NotFound):
    code = "template_not_found"
    title = "Email template not found"


class TemplateVariableMissing(ValidationFailed):
    code = "template_variable_missing"
    title = "Email template variable missing"


class TemplateRenderFailed(ValidationFailed):
    code = "template_render_failed"
    title = "Email template cannot be rendered"


class TemplateExists(Conflict):
    code = "template_exists"
    title = "Email template exists"
    default_detail = "A template with this key and locale already exists."


class UnsubscribeTokenInvalid(ApplicationError):
    status_code = 400
    code = "token_invalid"
    title = "Invalid token"
    default_detail = "The unsubscribe link is not valid."


class ResendImpossible(ValidationFailed):
    code = "resend_impossible"
    title = "Email cannot be resent"
    default_detail = (
        "This email carried a one-time link that is no longer stored; ask for a new one instead."
    )


class TemplateTooLarge(ValidationFailed):
    code = "template_too_large"
    title = "Email too large"


class TemplateReserved(ApplicationError):
    status_code = 403
    code = "template_reserved"
    title = "Security email template"
    default_detail = (
        "Security email templates are changed by superusers only, and only the account "
        "flows send them."
    )


class UnknownMessage(ApplicationError):
    status_code = 400
    code = "unknown_message"
    title = "Unknown message"
    default_detail = "The event names no email sent from here."


# Webhook calls (email_app.webhooks) -----------------------------------------------------


class WebhookNotConfigured(NotFound):
    code = "webhook_not_configured"
    title = "Webhook not configured"
    default_detail = "This server takes no webhook calls from that provider."


class WebhookRefused(ApplicationError):
    status_code = 400
    code = "webhook_unverified"
    title = "Webhook not verified"
    default_detail = "The call does not carry this provider's valid signature or credentials."


class WebhookMalformed(ApplicationError):
    status_code = 400
    code = "webhook_malformed"
    title = "Malformed webhook call"
    default_detail = "The body is not an event this provider sends."


class WebhookNotAuthenticated(ApplicationError):
    # Amazon SNS sends credentials only after a 401 challenge.
    status_code = 401
    code = "not_authenticated"
    title = "Not authenticated"
    default_detail = "This webhook needs the configured HTTP basic auth credentials."
    headers = {"WWW-Authenticate": 'Basic realm="webhooks"'}


class WebhookMethodNotAllowed(ApplicationError):
    status_code = 405
    code = "method_not_allowed"
    title = "Method not allowed"
    default_detail = "Webhooks take POST."
    headers = {"Allow": "POST, HEAD"}


class SnsConfirmationFailed(ApplicationError):
    status_code = 502
    code = "sns_confirmation_failed"
    title = "Subscription not confirmed"
    default_detail = "Amazon SNS's confirmation URL could not be fetched; SNS will ask again."
