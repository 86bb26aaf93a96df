"""Request body parsing with a size limit."""

import io

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from sv_sdk.errors import ApplicationError


class PayloadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"
    title = "Request body too large"
    default_detail = "The request body is larger than the API accepts."


class LimitedJSONParser(JSONParser):
    """JSON only, no larger than SV_API_MAX_BODY_BYTES, and nested no deeper than Python parses."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        limit = settings.SV_API_MAX_BODY_BYTES
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > limit:
            raise PayloadTooLarge()
        # Content-Length may be absent (chunked): read one byte past the limit to know.
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge()
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            # 64 KB of "[" nests deeper than Python's JSON decoder can recurse.
            raise ParseError("JSON parse error - the body nests too deeply.") from None
