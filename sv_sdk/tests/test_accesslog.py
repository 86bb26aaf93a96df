"""Issue 15, class 8: unsubscribe tokens do not reach the access logs."""

import logging
from datetime import timedelta
from types import SimpleNamespace

from gunicorn.config import Config

from sv_sdk.accesslog import AccessLogger, UrlRedactingFilter

TOKEN = "WyIwMWEyMjVhMCIsInByb2R1Y3QiXQ:1xXWo9:Lwb7Z-kSjEVZbQnL7CCLpCjl8XQ19Kv8nYri3ZDkhHY"


def access_line(raw_uri: str, referer: str = "-") -> str:
    """The line gunicorn's access log writes for one request, with our logger class."""
    config = Config()
    config.set("accesslog", "-")
    logger = AccessLogger(config)
    path, _, query = raw_uri.partition("?")
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": raw_uri,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_REFERER": referer,
    }
    response = SimpleNamespace(status="200 OK", headers=[], sent=42)
    request = SimpleNamespace(headers=[("REFERER", referer)])
    atoms = logger.atoms(response, request, environ, timedelta(milliseconds=3))
    return config.access_log_format % atoms + " " + " ".join(str(v) for v in atoms.values())


def test_the_token_path_segment_is_redacted_in_every_field():
    line = access_line(f"/api/v1/email/unsubscribe/{TOKEN}", referer=f"https://x/?token={TOKEN}")

    assert TOKEN not in line
    assert '"POST /api/v1/email/unsubscribe/[redacted] HTTP/1.1" 200' in line


def test_the_query_token_of_older_links_is_redacted():
    line = access_line(f"/api/v1/email/unsubscribe?token={TOKEN}&x=1")

    assert TOKEN not in line
    assert "unsubscribe?token=[redacted]&x=1" in line


def test_other_paths_are_logged_as_they_are():
    assert '"POST /api/v1/users/01ab?limit=5 HTTP/1.1"' in access_line("/api/v1/users/01ab?limit=5")


def test_djangos_request_warnings_name_the_path_redacted():
    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "Bad Request: %s",
        (f"/api/v1/email/unsubscribe/{TOKEN}",),
        None,
    )

    installed = [
        f for f in logging.getLogger("django.request").filters if isinstance(f, UrlRedactingFilter)
    ]
    installed[0].filter(record)

    assert record.getMessage() == "Bad Request: /api/v1/email/unsubscribe/[redacted]"
