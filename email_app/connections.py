"""Email backend connections kept open between the deliveries of one worker process."""

import atexit
import logging
import smtplib
import threading
import time

from django.core.mail import get_connection
from django.core.signals import setting_changed

logger = logging.getLogger(__name__)

# An SMTP connection idle longer than this is asked (NOOP) before it carries a
# message: the server may have closed it meanwhile. A busy worker never waits
# that long between messages, so it asks nothing.
PROBE_AFTER_SECONDS = 1.0
# Idle longer than this, it is closed rather than asked: servers drop idle
# clients after a few minutes (RFC 5321 asks for at least five), some sooner.
CLOSE_AFTER_SECONDS = 60.0

# (when it was given back, connection); the most recently used last.
_idle: list[tuple[float, object]] = []
_lock = threading.Lock()


def connection_borrow():
    """An open connection of the configured email backend, for one delivery at a time.

    Give it back with `connection_release` once the outcome is recorded.
    """
    while True:
        with _lock:
            if not _idle:
                break
            since, connection = _idle.pop()
        idle = time.monotonic() - since
        if idle < PROBE_AFTER_SECONDS or (idle < CLOSE_AFTER_SECONDS and _answers(connection)):
            return connection
        _close_quietly(connection)
    connection = get_connection()
    connection.open()
    return connection


def connection_release(connection, *, reusable: bool) -> None:
    """Keep `connection` for the next delivery, or close it.

    A connection that saw a failure is closed: its state is unknown.
    """
    if not reusable:
        _close_quietly(connection)
        return
    now = time.monotonic()
    with _lock:
        _idle.append((now, connection))
        # Connections nobody took for a while (a burst is over): close them.
        stale = [c for since, c in _idle if now - since >= CLOSE_AFTER_SECONDS]
        _idle[:] = [(since, c) for since, c in _idle if now - since < CLOSE_AFTER_SECONDS]
    for old in stale:
        _close_quietly(old)


def connections_close() -> None:
    """Close every idle connection (at exit, and when the email settings change)."""
    with _lock:
        idle, _idle[:] = list(_idle), []
    for _since, connection in idle:
        _close_quietly(connection)


def _answers(connection) -> bool:
    smtp = getattr(connection, "connection", None)
    if not isinstance(smtp, smtplib.SMTP):
        return True  # an ESP's HTTP session reconnects by itself
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _close_quietly(connection) -> None:
    try:
        connection.close()
    except Exception as exc:  # the message is already accepted or already failed
        logger.info("closing the email connection failed: %s", exc)


def _settings_changed(*, setting, **kwargs) -> None:
    # Tests point the backend at another server: connections to the old one must go.
    if setting.startswith(("EMAIL_", "ANYMAIL")):
        connections_close()


setting_changed.connect(_settings_changed)
atexit.register(connections_close)
