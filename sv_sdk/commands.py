"""What every management command shares: error messages, dates, a progress bar."""

import copy
import time
import warnings
from contextlib import contextmanager
from datetime import datetime

import environ
from django.core.management.base import CommandError, OutputWrapper
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from sv_sdk.errors import ApplicationError


def error_message(exc: ApplicationError) -> str:
    """A service's refusal as one line for a CommandError: its detail, then each field's."""
    fields = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.errors.items())
    return f"{exc.detail} {fields}".strip()


def parse_moment(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 date (its midnight) or date and time; None stays None.

    Without an offset it is in the project's time zone (TIME_ZONE, UTC here). Anything
    else is a CommandError naming `option`.
    """
    if value is None:
        return None
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime.combine(day, datetime.min.time()) if day else None
    except ValueError:  # well formed but impossible, as 2024-02-30
        moment = None
    if moment is None:
        raise CommandError(f"{option}: {value!r} is not an ISO 8601 date or date and time")
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Progress:
    """A one-line progress bar on a terminal; nothing at all when the stream is piped.

    Use it as a context manager on a command's stdout or stderr. The bar is redrawn at
    most ten times a second, and once more, complete, at the end.
    """

    WIDTH = 30

    def __init__(
        self,
        stream: OutputWrapper,
        *,
        label: str = "",
        total: int | None = None,
        enabled: bool = True,
    ):
        self.stream, self.label, self.total = stream, label, total
        self.enabled = enabled and stream.isatty()
        self.done = 0
        self._drawn_at = 0.0
        self._on_line = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.enabled:
            self._draw()
            self._put("\n")

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.enabled and (not self._on_line or time.monotonic() - self._drawn_at >= 0.1):
            self._draw()

    def write(self, line: str) -> None:
        """Print a line of output; the bar comes back below it at the next advance."""
        if self._on_line:
            self._put("\r\033[K")
            self._on_line = False
        self.stream.write(line)

    def _draw(self) -> None:
        if self.total:
            filled = self.WIDTH * min(self.done, self.total) // self.total
            bar = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total}"
        else:
            bar = str(self.done)
        self._put(f"\r{self.label} {bar}" if self.label else f"\r{bar}")
        self._drawn_at, self._on_line = time.monotonic(), True

    def _put(self, text: str) -> None:
        # Plain text with no line ending: stderr's wrapper would colour it as an error.
        self.stream.write(text, style_func=str, ending="")
        self.stream.flush()


@contextmanager
def default_connection_as(overrides: dict):
    """Run the block with `overrides` (SV_MIGRATE_DATABASE, SV_DIRECT_DATABASE) swapped into the
    default connection's settings, and put them back after it."""
    connection = connections[DEFAULT_DB_ALIAS]
    original = copy.deepcopy(connection.settings_dict)
    _reconnect(connection, overrides)
    try:
        yield
    finally:
        # Whatever runs next in this process (a test session, call_command's caller) is back
        # on the default settings.
        _reconnect(connection, original)


def _reconnect(connection, settings_dict: dict) -> None:
    connection.close()
    # The pool holds connections opened with the old settings.
    connection.close_pool()
    connection.settings_dict.update(copy.deepcopy(settings_dict))


def database_url_settings(url: str, option: str) -> dict:
    """The connection settings of a PostgreSQL URL given on the command line, for
    `default_connection_as`; CommandError when it is not one (the message leaves the URL out,
    which may carry a password)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # django-environ warns of an unknown scheme
        db = environ.Env.db_url_config(url) if "://" in url else {}
    if db.get("ENGINE") != "django.db.backends.postgresql" or not db.get("NAME"):
        raise CommandError(f"{option}: expected postgres://user:password@host:port/database")
    return {
        **{key: db.get(key) or "" for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")},
        "OPTIONS": db.get("OPTIONS", {}),
    }
