"""Pagination for API lists."""

from rest_framework.pagination import CursorPagination, LimitOffsetPagination


class PagePagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class NewestFirstCursorPagination(CursorPagination):
    """Stable cursor pagination for append-mostly tables (audit logs, sends)."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = "-id"
