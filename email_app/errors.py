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
