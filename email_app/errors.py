"""Email errors."""

from sv_sdk.errors import NotFound, ValidationFailed


class TemplateNotFound(NotFound):
    code = "template_not_found"
    title = "Email template not found"


class TemplateVariableMissing(ValidationFailed):
    code = "template_variable_missing"
    title = "Email template variable missing"
