"""Request id and audit context for every request."""

from .context import REQUEST_ID_HEADER, accepted_request_id, request_context


class AuditContextMiddleware:
    """Give each request an id (the caller's X-Request-ID when well-formed) and echo it.

    While the request runs, audit_record picks its actor, address, user agent
    and request id up from it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = accepted_request_id(request.headers.get(REQUEST_ID_HEADER))
        with request_context(request):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id
        return response
