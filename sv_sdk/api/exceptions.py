"""Every API error as an RFC 9457 problem document with a stable `code`."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, DataError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from sv_sdk.errors import ApplicationError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

# DRF's own exceptions, as (status, code, title).
_DRF_PROBLEMS = {
    exceptions.ParseError: (400, "invalid_json", "Malformed request body"),
    exceptions.UnsupportedMediaType: (415, "unsupported_media_type", "Unsupported media type"),
    exceptions.NotAuthenticated: (401, "not_authenticated", "Not authenticated"),
    exceptions.AuthenticationFailed: (401, "not_authenticated", "Not authenticated"),
    exceptions.PermissionDenied: (403, "permission_denied", "Permission denied"),
    exceptions.NotFound: (404, "not_found", "Not found"),
    exceptions.MethodNotAllowed: (405, "method_not_allowed", "Method not allowed"),
    exceptions.NotAcceptable: (406, "not_acceptable", "Not acceptable"),
    exceptions.Throttled: (429, "rate_limited", "Too many requests"),
}


def problem_body(*, status_code: int, code: str, title: str, detail: str, errors=None) -> dict:
    body = {
        "type": f"about:blank#{code}" if code else "about:blank",
        "title": title,
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    return body


def problem_response(
    *, status_code: int, code: str, title: str, detail: str, errors=None, headers=None
) -> Response:
    body = problem_body(
        status_code=status_code, code=code, title=title, detail=detail, errors=errors
    )
    response = Response(body, status=status_code, headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _field_errors(detail) -> dict:
    if isinstance(detail, dict):
        return {
            field: [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
            for field, msgs in detail.items()
        }
    messages = detail if isinstance(detail, list) else [detail]
    return {"non_field_errors": [str(m) for m in messages]}


def problem_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: application, validation and framework errors as problems."""
    if isinstance(exc, DataError):
        # A value PostgreSQL cannot take (a NUL byte in text, a number out of range)
        # came from the request: bad input, whichever view passed it on.
        set_rollback()
        return problem_response(
            status_code=400,
            code="invalid_input",
            title="Invalid input",
            detail="A value in the request cannot be stored or looked up.",
        )
    if isinstance(exc, DatabaseError):
        # The database is unreachable, restarting, or failed the statement: the
        # transaction rolled back, so the client may safely retry. Nothing about
        # the statement or its parameters goes into the answer.
        # The primary message and SQLSTATE only: a DETAIL line may quote row values.
        cause = exc.__cause__
        diag = getattr(cause, "diag", None)
        logger.error(
            "database error answering %s: %s %s %s",
            context["request"].path,
            type(exc).__name__,
            getattr(cause, "sqlstate", "") or "",
            getattr(diag, "message_primary", "") or "",
        )
        set_rollback()
        return problem_response(
            status_code=503,
            code="service_unavailable",
            title="Service unavailable",
            detail="The service cannot reach its database right now; try again shortly.",
            headers={"Retry-After": "2"},
        )
    if isinstance(exc, ApplicationError):
        return problem_response(
            status_code=exc.status_code,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            errors=exc.errors,
            headers=getattr(exc, "headers", None),
        )
    if isinstance(exc, exceptions.ValidationError):
        return problem_response(
            status_code=400,
            code="validation_error",
            title="Invalid input",
            detail="Some fields are invalid.",
            errors=_field_errors(exc.detail),
        )
    if isinstance(exc, RequestDataTooBig):
        return problem_response(
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            code="payload_too_large",
            title="Request body too large",
            detail="The request body is larger than this endpoint accepts.",
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    for exc_class, (status_code, code, title) in _DRF_PROBLEMS.items():
        if isinstance(exc, exc_class):
            # Let DRF add its headers (WWW-Authenticate, Allow, Retry-After).
            response = drf_exception_handler(exc, context)
            headers = dict(response.headers) if response is not None else {}
            headers.pop("Content-Type", None)
            return problem_response(
                status_code=response.status_code if response is not None else status_code,
                code=code,
                title=title,
                detail=str(exc.detail),
                headers=headers,
            )
    return drf_exception_handler(exc, context)
