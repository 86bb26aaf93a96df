"""Helpers for the audit commands: moments from the command line, a progress bar."""

import time
from datetime import UTC, datetime

from django.core.management.base import CommandError
from django.utils.dateparse import parse_date, parse_datetime


def parse_moment(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 date (midnight UTC) or datetime (UTC unless it says otherwise)."""
    if value is None:
        return None
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime.combine(day, datetime.min.time()) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"{option}: {value!r} is not an ISO 8601 date or date and time")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Progress:
    """A one-line progress bar on a terminal; does nothing when `enabled` is false."""

    WIDTH = 30

    def __init__(self, stream, *, label: str, total: int | None, enabled: bool):
        self.stream, self.label, self.total, self.enabled = stream, label, total, enabled
        self.done = 0
        self._drawn_at = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.enabled and time.monotonic() - self._drawn_at >= 0.1:
            self._draw()

    def _draw(self) -> None:
        self._drawn_at = time.monotonic()
        if self.total:
            share = min(self.done / self.total, 1.0)
            bar = "#" * int(share * self.WIDTH)
            line = f"{self.label} [{bar:<{self.WIDTH}}] {share:4.0%} {self.done}/{self.total}"
        else:
            line = f"{self.label} {self.done}"
        self.stream.write(f"\r{line}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
