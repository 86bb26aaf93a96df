"""The outbox as /metrics shows it, read at scrape time from the in-flight rows only."""

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from .models import EmailSend

Status = EmailSend.Status
_IN_FLIGHT = [Status.QUEUED, Status.DEFERRED, Status.SENDING]


class OutboxCollector:
    """Depth by status and the oldest queued send's age.

    Both read email_sends_status_idx (status, created_at) over the sends still to go,
    never the delivered history, so a scrape costs the same however big the table grows.
    """

    def describe(self):
        return list(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "sv_email_outbox_depth", "Sends not yet handed over, by status", labels=["status"]
            ),
            GaugeMetricFamily(
                "sv_email_outbox_oldest_queued_age_seconds",
                "Seconds the oldest queued send has waited (0: none queued)",
            ),
        )

    def collect(self):
        try:
            counts = dict(
                EmailSend.objects.filter(status__in=_IN_FLIGHT)
                .values_list("status")
                .annotate(count=Count("pk"))
                .order_by()
            )
            oldest = EmailSend.objects.filter(status=Status.QUEUED).aggregate(
                oldest=Min("created_at")
            )["oldest"]
        except DatabaseError:
            return
        depth, age = self._families()
        for status in _IN_FLIGHT:
            depth.add_metric([status], counts.get(status, 0))
        age.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0.0)
        yield depth
        yield age
