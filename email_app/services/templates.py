"""Email templates: create and change them, and choose the one to render for a key and locale."""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template import TemplateSyntaxError

from audit_app.services import audit_record
from auth_app.models import User
from sv_sdk.db.batch import Batch
from sv_sdk.errors import ValidationFailed

from ..errors import TemplateExists, TemplateNotFound, TemplateRenderFailed, TemplateReserved
from ..models import (
    SECURITY_TEMPLATES,
    EmailSend,
    EmailTemplate,
)
from ..rendering import (
    check_syntax,
    link_marker,
    links_damaged,
    links_misplaced,
    render_preview,
    variables,
)

logger = logging.getLogger(__name__)

Status = EmailSend.Status


TEMPLATE_FIELDS = ("subject", "text_body", "html_body", "description", "is_active")
_TEMPLATE_SOURCES = ("subject", "text_body", "html_body")


def template_get(*, key: str, locale: str | None = None) -> EmailTemplate:
    """The active template for key and locale, falling back to the default locale."""
    batch = Batch()
    found = batch.select(EmailTemplate, *template_candidates(key=key, locale=locale))
    return template_choose(batch.run()[found], key=key, locale=locale)


def template_candidates(*, key: str, locale: str | None = None) -> tuple[str, list]:
    """The condition and values of the active templates template_get chooses from.

    For `Batch.select(EmailTemplate, ...)`: the locale's and the default locale's.
    """
    locales = [loc for loc in (locale, settings.SV_DEFAULT_LOCALE) if loc]
    return '"key" = %s AND "locale" = ANY(%s) AND "is_active"', [key, locales]


def template_choose(
    templates: Iterable[EmailTemplate], *, key: str, locale: str | None = None
) -> EmailTemplate:
    """The locale's template from `templates`, else the default locale's."""
    by_locale = {t.locale: t for t in templates}
    for loc in (locale, settings.SV_DEFAULT_LOCALE):
        if loc and loc in by_locale:
            return by_locale[loc]
    raise TemplateNotFound(f"no active email template {key!r}")


def template_editable(*, key: str, actor: User | None) -> None:
    """Raise TemplateReserved unless `actor` may create or change templates with `key`.

    Security templates (SECURITY_TEMPLATES, any locale) are for superusers; no
    actor means a migration or a command, which may.
    """
    if actor is not None and not actor.is_superuser and key in SECURITY_TEMPLATES:
        raise TemplateReserved()


def template_sources_check(*, key: str, sources: dict) -> None:
    """Raise ValidationFailed unless the subject and bodies in `sources` can be saved.

    Checks the syntax, then renders once with a sample context: a template too
    large, or one that moves a secret link out of place, is refused now rather
    than at send time.
    """
    errors = {}
    for field in _TEMPLATE_SOURCES:
        try:
            check_syntax(sources[field] or "")
        except TemplateSyntaxError as exc:
            errors[field] = [f"Template syntax error: {exc}"]
    if errors:
        raise ValidationFailed(errors=errors)
    names = variables(*(sources[field] for field in _TEMPLATE_SOURCES))
    markers = {name: link_marker() for name in SECURITY_TEMPLATES.get(key, ())}
    try:
        (subject, text, html), _missing = render_preview(
            **{field: sources[field] or "" for field in _TEMPLATE_SOURCES},
            context={**{name: f"[{name}]" for name in names}, **markers},
        )
    except TemplateRenderFailed:
        if markers:
            raise  # a security template must render, or its links cannot be checked
        return  # the sample values are strings; the real context may fit
    by_marker = {marker: name for name, marker in markers.items()}
    for field, misplaced in links_misplaced(
        markers.values(), subject=subject, text=text, html=html
    ).items():
        errors[field] = [
            f"The secret link {{{{ {by_marker[m]} }}}} may stand only alone: as a whole "
            'href value (href="...") or a word of its own in the text, never in the subject.'
            for m in sorted(misplaced)
        ]
    for marker in sorted(links_damaged(markers.values(), subject, text, html)):
        errors.setdefault("template", []).append(
            f"The secret link {{{{ {by_marker[marker]} }}}} must be used as it is: "
            "a filter cannot change it."
        )
    if errors:
        raise ValidationFailed(errors=errors)


def template_create(
    *,
    key: str,
    locale: str,
    subject: str,
    text_body: str,
    html_body: str = "",
    description: str = "",
    is_active: bool = True,
    actor: User | None = None,
) -> EmailTemplate:
    """Create a template (version 1); raise TemplateExists for a taken key and locale."""
    template_editable(key=key, actor=actor)
    fields = {
        "subject": subject,
        "text_body": text_body,
        "html_body": html_body,
        "description": description,
        "is_active": is_active,
    }
    template_sources_check(key=key, sources=fields)
    template = EmailTemplate(key=key, locale=locale, **fields)
    with transaction.atomic():
        try:
            with transaction.atomic():
                template.save(force_insert=True)
        except IntegrityError as exc:
            if "email_templates_key_locale_uniq" in str(exc):
                raise TemplateExists() from None
            raise
        _template_audit(template, actor=actor, changed=["created"])
    return template


def template_update(
    *, template: EmailTemplate, actor: User | None = None, **changes
) -> EmailTemplate:
    """Change a template's content; every real change bumps its version and is audited."""
    template_editable(key=template.key, actor=actor)
    unknown = set(changes) - set(TEMPLATE_FIELDS)
    if unknown:
        raise ValidationFailed(errors={f: ["This field cannot be changed."] for f in unknown})
    if set(changes) & set(_TEMPLATE_SOURCES):
        template_sources_check(
            key=template.key,
            sources={f: changes.get(f, getattr(template, f)) for f in _TEMPLATE_SOURCES},
        )
    with transaction.atomic():
        # The lock makes concurrent edits bump the version one after the other.
        locked = EmailTemplate.objects.select_for_update().get(pk=template.pk)
        changed = sorted(f for f, v in changes.items() if getattr(locked, f) != v)
        if changed:
            for field in changed:
                setattr(locked, field, changes[field])
            locked.version += 1
            locked.save()
            _template_audit(locked, actor=actor, changed=changed)
    for field in (*TEMPLATE_FIELDS, "version", "updated_at"):
        setattr(template, field, getattr(locked, field))
    return template


def _template_audit(template: EmailTemplate, *, actor: User | None, changed: list[str]) -> None:
    audit_record(
        event_type="email_template.changed",
        actor_id=actor.pk if actor else None,
        target_type="email_template",
        target_id=template.pk,
        metadata={
            "key": template.key,
            "locale": template.locale,
            "version": template.version,
            "changed": changed,
        },
    )
