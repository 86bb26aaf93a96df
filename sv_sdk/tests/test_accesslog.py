"""Issue 15, class 8: unsubscribe tokens do not reach the logs that name request paths."""

import logging

from sv_sdk.logs import RedactSecrets, redact

TOKEN = "WyIwMWEyMjVhMCIsInByb2R1Y3QiXQ:1xXWo9:Lwb7Z-kSjEVZbQnL7CCLpCjl8XQ19Kv8nYri3ZDkhHY"


def test_class8_the_token_path_segment_is_redacted():
    line = redact(f'"POST /api/v1/email/unsubscribe/{TOKEN} HTTP/1.1" 200 referer=-')

    assert TOKEN not in line
    assert '"POST /api/v1/email/unsubscribe/[redacted] HTTP/1.1" 200' in line


def test_class8_the_query_token_of_older_links_is_redacted():
    line = redact(f"/api/v1/email/unsubscribe?token={TOKEN}&x=1")

    assert TOKEN not in line
    assert "unsubscribe?token=[redacted]&x=1" in line


def test_class8_other_paths_are_logged_as_they_are():
    assert redact("POST /api/v1/users/01ab?limit=5") == "POST /api/v1/users/01ab?limit=5"


def test_class8_djangos_request_warnings_name_the_path_redacted():
    # The handler LOGGING installs: django.request's "Bad Request: <path>" goes through it.
    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "Bad Request: %s",
        (f"/api/v1/email/unsubscribe/{TOKEN}",),
        None,
    )
    handlers = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactSecrets) for f in h.filters)
    ]
    assert handlers, "the root handler should carry the redacting filter"
    for log_filter in handlers[0].filters:
        log_filter.filter(record)

    assert record.getMessage() == "Bad Request: /api/v1/email/unsubscribe/[redacted]"


def test_a_long_random_token_without_a_digit_is_redacted_and_long_names_are_not():
    token = "re_ZOXPwtSbDOGPTFscEwIRF-lugbXXqhMY"  # token_urlsafe can give no digit at all
    names = "users_email_key_uniq_and_a_long_snake_case_name SV_REPLICA_CONNECT_TIMEOUT_SECONDS"
    uuid = "0192f6c8-7a3e-7c1d-9b2e-4f5a6b7c8d9e"

    assert redact(f"ESP refused {token}") == "ESP refused [redacted]"
    assert redact(names) == names
    assert redact(f"user {uuid}") == f"user {uuid}"
