"""Pagination for API lists."""

from rest_framework import pagination, serializers
from rest_framework.exceptions import NotFound


class PagePagination(pagination.LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class CursorPagination(pagination.CursorPagination):
    """Cursor pages of up to 200 (`?limit=`, default 50); subclasses set `ordering`."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200

    def decode_cursor(self, request):
        # A made-up cursor is bad input (400), not a missing page (DRF's 404).
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise serializers.ValidationError({"cursor": ["Invalid cursor."]}) from None


class NewestFirstCursorPagination(CursorPagination):
    """Newest first by id: UUIDv7 ids and the audit log's identity both sort by creation."""

    ordering = "-id"
