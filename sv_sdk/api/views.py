"""Fallback views: unknown API paths answer with a problem document, not an HTML page."""

from django.http import JsonResponse
from django.views.defaults import page_not_found


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "type": "about:blank#not_found",
                "title": "Not found",
                "status": 404,
                "detail": "No such API path.",
                "code": "not_found",
            },
            status=404,
            content_type="application/problem+json",
        )
    return page_not_found(request, exception)
