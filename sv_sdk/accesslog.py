"""Access logs (gunicorn's, and Django's request logger) without the secrets some URLs carry.

One-click unsubscribe (RFC 8058) needs its token in the URL a mail client POSTs to;
it is the path segment after `/email/unsubscribe/`. Links of older emails carry it as
`?token=`. Every field of a log line (request line, path, query, referer, headers)
shows `[redacted]` instead.
"""

import logging
import re

from gunicorn.glogging import Logger

_SECRETS_IN_URLS = (
    (re.compile(r"(/email/unsubscribe/)[^/?#\s\"]+"), r"\1[redacted]"),
    (re.compile(r"((?:^|[?&])token=)[^&#\s\"]*"), r"\1[redacted]"),
)


def url_redacted(text: str) -> str:
    """`text` with the tokens of unsubscribe paths and of `token=` parameters redacted."""
    for pattern, replacement in _SECRETS_IN_URLS:
        text = pattern.sub(replacement, text)
    return text


class AccessLogger(Logger):
    """gunicorn's logger whose access lines go through `url_redacted`.

    Use with `gunicorn --logger-class sv_sdk.accesslog.AccessLogger`.
    """

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: url_redacted(v) if isinstance(v, str) else v for k, v in atoms.items()}


class UrlRedactingFilter(logging.Filter):
    """For `django.request`, whose warnings name the request's path."""

    def filter(self, record):
        if isinstance(record.args, tuple):
            record.args = tuple(
                url_redacted(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True
