"""One person's history: their audit events, emails and sessions merged, newest first."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from audit_app.models import AuditLog
from auth_app.admin import people_by_id, person
from auth_app.models import Session, User
from email_app.models import EmailSend

PAGE = 25


@dataclass(frozen=True)
class Entry:
    when: datetime
    kind: str
    what: str
    detail: object
    url: str


@dataclass(frozen=True)
class Timeline:
    entries: list[Entry]
    older: str  # the `before` cursor of the next page, "" on the last one


def parse_before(value: str | None) -> datetime | None:
    """The page cursor (an ISO timestamp); None for the first page or a cursor not understood."""
    try:
        return parse_datetime(value) if value else None
    except ValueError:
        return None


def _source_page(rows: QuerySet, field: str, *tiebreak: str, before: datetime | None) -> list:
    """At most a page and one of `rows` older than `before` by `field`, newest first."""
    if before:
        rows = rows.filter(**{f"{field}__lt": before})
    return list(rows.order_by(f"-{field}", *tiebreak)[: PAGE + 1])


def user_timeline(
    user: User, *, before: datetime | None, audit: bool, emails: bool, sessions: bool
) -> Timeline:
    """A page of `user`'s timeline older than `before`, from the sources the reader may see.

    Each source gives at most a page (one indexed query each: audit rows by user or
    actor, sends and sessions by user); the merge keeps the newest PAGE.
    """
    entries: list[Entry] = []
    if audit:
        events = _source_page(
            AuditLog.objects.filter(Q(user_id=user.pk) | Q(actor_id=user.pk)),
            "occurred_at",
            "-id",
            before=before,
        )
        people = people_by_id(event.actor_id for event in events)
        entries += [
            Entry(
                event.occurred_at,
                "audit",
                event.event_type,
                person(event.actor_id, people) if event.actor_id != user.pk else "by themself",
                reverse("admin:audit_app_auditlog_change", args=[event.pk]),
            )
            for event in events
        ]
    if emails:
        entries += [
            Entry(
                send.created_at,
                "email",
                f"email {send.status}",
                send.subject,
                reverse("admin:email_app_emailsend_change", args=[send.pk]),
            )
            for send in _source_page(
                EmailSend.objects.filter(user=user), "created_at", before=before
            )
        ]
    if sessions:
        entries += [
            Entry(
                session.created_at,
                "session",
                "session started",
                f"{session.ip_address or '-'}, until {session.expires_at:%Y-%m-%d %H:%M} UTC",
                reverse("admin:auth_app_session_change", args=[session.pk]),
            )
            for session in _source_page(
                Session.objects.filter(user=user), "created_at", before=before
            )
        ]
    entries.sort(key=lambda entry: entry.when, reverse=True)
    page = entries[:PAGE]
    more = len(entries) > PAGE
    return Timeline(page, page[-1].when.isoformat() if more and page else "")
