"""Reads of the email domain."""

from datetime import datetime

from django.db.models import Q, QuerySet

from auth_app.models import User
from sv_sdk.errors import NotFound

from .errors import UnsubscribeTokenInvalid
from .models import ESSENTIAL_CATEGORIES, Category, EmailPreference, EmailSend, EmailTemplate
from .rendering import links_shown
from .unsubscribe import unsubscribe_token_read


def template_list(*, key: str | None = None, locale: str | None = None) -> QuerySet[EmailTemplate]:
    templates = EmailTemplate.objects.all()
    if key:
        templates = templates.filter(key=key)
    if locale:
        templates = templates.filter(locale=locale)
    return templates


def template_by_id(template_id: str) -> EmailTemplate:
    template = EmailTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise NotFound("No such email template.")
    return template


def send_list(
    *,
    status: str | None = None,
    user_id: str | None = None,
    template: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[EmailSend]:
    """Sends filtered by status, user, template (key or id) and creation time."""
    sends = EmailSend.objects.select_related("template")
    if status:
        sends = sends.filter(status=status)
    if user_id:
        sends = sends.filter(user_id=user_id)
    if template:
        sends = sends.filter(Q(template__key=template) | Q(template_id=template))
    if since:
        sends = sends.filter(created_at__gte=since)
    if until:
        sends = sends.filter(created_at__lt=until)
    return sends


def send_by_id(send_id: str) -> EmailSend:
    sends = EmailSend.objects.select_related("template")
    send = sends.filter(pk=send_id).first()
    if send is None:
        raise NotFound("No such email.")
    return send


def send_safe_copy(send: EmailSend) -> dict:
    """The send's stored content for the API and the admin: each secret link [redacted].

    The stored bodies hold markers where the links go, and until delivery the
    links are redacted by value too, whatever a template did with them.
    """
    return {
        "text_body": links_shown(send.without_secrets(send.text_body)),
        "html_body": links_shown(send.without_secrets(send.html_body)),
        "context": send.context,
    }


def preferences_for_user(user: User) -> list[dict]:
    """Every category with the user's choice (subscribed unless they opted out)."""
    chosen = dict(EmailPreference.objects.filter(user=user).values_list("category", "subscribed"))
    return [
        {
            "category": category,
            "subscribed": True if category in ESSENTIAL_CATEGORIES else chosen.get(category, True),
            "essential": category in ESSENTIAL_CATEGORIES,
        }
        for category in Category.values
    ]


def unsubscribe_subject(*, token: str) -> tuple[User, str]:
    """The user and category an unsubscribe token names; UnsubscribeTokenInvalid if none.

    The token keeps working as long as its user exists.
    """
    user_id, category = unsubscribe_token_read(token)
    user = User.objects.filter(pk=user_id).first()
    if user is None or category in ESSENTIAL_CATEGORIES or category not in Category.values:
        raise UnsubscribeTokenInvalid()
    return user, category
