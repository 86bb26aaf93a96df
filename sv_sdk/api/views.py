"""Fallback views: API paths answer 404 and 500 with a problem document, not an HTML page."""

from django.http import JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as html_server_error

from .exceptions import PROBLEM_CONTENT_TYPE, problem_body


def _problem(status: int, code: str, title: str, detail: str) -> JsonResponse:
    return JsonResponse(
        problem_body(status_code=status, code=code, title=title, detail=detail),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return _problem(404, "not_found", "Not found", "No such API path.")
    if request.path.startswith("/webhooks/"):
        return _problem(404, "not_found", "Not found", "No webhook at this path.")
    return page_not_found(request, exception)


def server_error(request):
    # Never a traceback or an HTML page for API clients or a provider's webhook calls
    # (which retry on a 5xx); the details go to the log.
    if request.path.startswith(("/api/", "/webhooks/")):
        return _problem(
            500, "internal_error", "Internal error", "Something went wrong on our side."
        )
    return html_server_error(request)
