"""The dashboard's trends: bounded GROUP BY queries over indexed time columns, as Figures."""

from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDay, TruncHour

from audit_app.models import AuditLog
from auth_app.mfa import with_mfa_since
from auth_app.models import Session, User
from email_app.models import EmailSend

from .charts import Figure, Series

DAYS = 30
HOURS = 48
SIGN_IN_EVENTS = ("auth.sign_in", "auth.sign_in_failed", "auth.locked_out")


def _days(now: datetime) -> list[datetime]:
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def _hours(now: datetime) -> list[datetime]:
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [hour - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


def sign_ups(now: datetime, url) -> Figure:
    days = _days(now)
    counts = dict(
        User.objects.filter(created_at__gte=days[0])
        .annotate(day=TruncDay("created_at", tzinfo=UTC))
        .order_by()
        .values_list("day")
        .annotate(n=Count("pk"))
    )
    values = [counts.get(day, 0) for day in days]
    return Figure(
        key="sv-sign-ups",
        title=f"Sign-ups per day, last {DAYS} days",
        summary=f"{sum(values)} sign-ups in {DAYS} days; {values[-1]} today (UTC).",
        url=url(User, created_at__gte=_iso(days[0])),
        buckets=[f"{day:%m-%d}" for day in days],
        series=[Series("sign-ups", values)],
    )


def sign_ins(now: datetime, url) -> Figure:
    hours = _hours(now)
    rows = (
        AuditLog.objects.filter(event_type__in=SIGN_IN_EVENTS, occurred_at__gte=hours[0])
        .annotate(hour=TruncHour("occurred_at", tzinfo=UTC))
        .order_by()
        .values_list("hour", "event_type")
        .annotate(n=Count("pk"))
    )
    counts = {(hour, event): n for hour, event, n in rows}
    ok = [counts.get((h, "auth.sign_in"), 0) for h in hours]
    failed = [counts.get((h, "auth.sign_in_failed"), 0) for h in hours]
    locked = {
        i: f"{counts[h, 'auth.locked_out']} lockout(s)"
        for i, h in enumerate(hours)
        if counts.get((h, "auth.locked_out"))
    }
    lockouts = sum(counts.get((h, "auth.locked_out"), 0) for h in hours)
    return Figure(
        key="sv-sign-ins",
        title=f"Sign-ins per hour, last {HOURS} hours",
        summary=(
            f"{sum(ok)} successful and {sum(failed)} failed sign-ins, {lockouts} lockouts"
            f" in {HOURS} hours; lockouts are marked with a triangle."
        ),
        url=url(AuditLog, event_type="auth.sign_in_failed", within="2d"),
        buckets=[f"{h:%H}h" for h in hours],
        series=[
            Series("successful", ok, url(AuditLog, event_type="auth.sign_in", within="2d")),
            Series("failed", failed, url(AuditLog, event_type="auth.sign_in_failed", within="2d")),
        ],
        label_every=6,
        marks=locked,
    )


def email_funnel(now: datetime, url) -> Figure:
    days = _days(now)
    statuses = EmailSend.Status
    # status = ANY(...) with the range: the (status, created_at) index, one range per status.
    rows = (
        EmailSend.objects.filter(status__in=statuses.values, created_at__gte=days[0])
        .annotate(day=TruncDay("created_at", tzinfo=UTC))
        .order_by()
        .values("day")
        .annotate(
            queued=Count("pk"),
            sent=Count("pk", filter=Q(sent_at__isnull=False)),
            delivered=Count("pk", filter=Q(delivered_at__isnull=False)),
            soft_bounced=Count("pk", filter=Q(status=statuses.SOFT_BOUNCED)),
            bounced=Count("pk", filter=Q(status=statuses.BOUNCED)),
            complained=Count("pk", filter=Q(status=statuses.COMPLAINED)),
            failed=Count("pk", filter=Q(status=statuses.FAILED)),
        )
    )
    by_day = {row.pop("day"): row for row in rows}
    steps = ["queued", "sent", "soft_bounced", "delivered", "bounced", "complained", "failed"]
    series = []
    for step in steps:
        values = [by_day.get(day, {}).get(step, 0) for day in days]
        link = (
            url(EmailSend, within="30d")
            if step in ("queued", "sent")
            else url(EmailSend, status__exact=step, within="30d")
        )
        series.append(Series(step, values, link))
    totals = ", ".join(f"{sum(s.values)} {s.name}" for s in series)
    return Figure(
        key="sv-email-funnel",
        title=f"Emails per day by how far they got, last {DAYS} days",
        summary=f"Of the emails queued in {DAYS} days: {totals}.",
        url=url(EmailSend, within="30d"),
        buckets=[f"{day:%m-%d}" for day in days],
        series=series,
        kind="lines",
    )


def active_sessions(now: datetime, url) -> Figure:
    days = _days(now)
    rows = (
        Session.objects.filter(expires_at__gt=now)
        .annotate(day=TruncDay("created_at", tzinfo=UTC))
        .order_by()
        .values_list("day")
        .annotate(n=Count("pk"))
    )
    counts = dict(rows)
    values = [counts.get(day, 0) for day in days]
    values[0] += sum(n for day, n in counts.items() if day < days[0])
    return Figure(
        key="sv-sessions",
        title="Active sessions by the day they began",
        summary=(
            f"{sum(counts.values())} active sessions; {values[-1]} began today (UTC)"
            f"; the first bar holds those older than {DAYS} days."
        ),
        url=url(Session, expires_at__gt=_iso(now)),
        buckets=[f"{day:%m-%d}" for day in days],
        series=[Series("active sessions", values)],
    )


def staff_without_mfa(now: datetime, url) -> Figure:
    """Today's staff at the end of each day: who had a second factor by then, who had none.

    Drawn from when each joined and when each first set up a factor (one query over the
    staff, a partial index); a factor removed since, or staff status granted later, is
    not in the history.
    """
    days = _days(now)
    ends = [min(day + timedelta(days=1), now) for day in days]
    staff = list(
        with_mfa_since(User.objects.filter(is_staff=True)).values_list("created_at", "mfa_since")
    )
    enrolled = [
        sum(1 for joined, since in staff if joined < end and since is not None and since < end)
        for end in ends
    ]
    joined = [sum(1 for at, _ in staff if at < end) for end in ends]
    without = [total - done for total, done in zip(joined, enrolled, strict=True)]
    missing = url(User, is_staff__exact=1, mfa="off")
    return Figure(
        key="sv-staff-mfa",
        title=f"Staff without a second factor, last {DAYS} days",
        summary=(
            f"{without[-1]} of {joined[-1]} staff have no second factor today,"
            f" {without[0]} of {joined[0]} {DAYS} days ago (today's staff, by when they joined"
            " and first set one up)."
        ),
        url=missing,
        buckets=[f"{day:%m-%d}" for day in days],
        series=[
            Series("with MFA", enrolled, url(User, is_staff__exact=1, mfa="on")),
            Series("without MFA", without, missing),
        ],
    )
