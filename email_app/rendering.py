"""Render email templates with Django's engine; a missing variable is an error."""

from django.template import Context, Engine

from .errors import TemplateVariableMissing


class _RaiseOnMissing(str):
    """string_if_invalid that raises instead of rendering an empty string.

    Django formats string_if_invalid with the variable's name when it
    contains "%s"; this object claims to, and raises at that moment.
    """

    def __contains__(self, item):
        return item == "%s"

    def __mod__(self, name):
        raise TemplateVariableMissing(f"template variable {name!r} is missing")


_html_engine = Engine(autoescape=True, string_if_invalid=_RaiseOnMissing())
_text_engine = Engine(autoescape=False, string_if_invalid=_RaiseOnMissing())


def render(*, subject: str, text_body: str, html_body: str, context: dict) -> tuple[str, str, str]:
    """Return the rendered (subject, text, html); HTML is auto-escaped, the others are not."""
    subject_out = _text_engine.from_string(subject).render(Context(context)).strip()
    text_out = _text_engine.from_string(text_body).render(Context(context))
    html_out = _html_engine.from_string(html_body).render(Context(context)) if html_body else ""
    # A subject must be a single line (header injection).
    return " ".join(subject_out.split()), text_out, html_out
