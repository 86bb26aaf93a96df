"""Pagination for API lists."""

from django.core.exceptions import ValidationError as DjangoValidationError
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
            raise _invalid_cursor() from None

    def paginate_queryset(self, queryset, request, view=None):
        # A cursor is base64 the client can rewrite: a position that the ordering
        # field cannot take ("p=zzz" for a timestamp) is bad input too.
        try:
            return super().paginate_queryset(queryset, request, view)
        except DjangoValidationError:
            raise _invalid_cursor() from None


def _invalid_cursor() -> serializers.ValidationError:
    return serializers.ValidationError({"cursor": ["Invalid cursor."]})


class NewestFirstCursorPagination(CursorPagination):
    """Newest first by id: UUIDv7 ids and the audit log's identity both sort by creation."""

    ordering = "-id"


class RowSource:
    """What CursorPagination asks of a queryset, answered by one SQL statement.

    DRF's CursorPagination only orders by its field, filters on it (`<field>__lt`
    or `__gt` the cursor's position) and slices; this records the first two
    and calls `fetch(descending=, bound=, offset=, limit=)` for the slice, so a
    list can reuse DRF's cursor logic (links, offsets, reversing) unchanged
    while its rows come from a precompiled statement instead of a queryset.
    `bound` is None or (">" or "<", position). Rows must be dicts holding the
    ordering field.
    """

    def __init__(self, fetch):
        self._fetch = fetch
        self._descending = False
        self._bound = None

    def order_by(self, ordering):
        self._descending = ordering.startswith("-")
        return self

    def filter(self, **lookup):
        ((key, position),) = lookup.items()
        self._bound = ("<" if key.endswith("__lt") else ">", position)
        return self

    def __getitem__(self, window: slice) -> list[dict]:
        return self._fetch(
            descending=self._descending,
            bound=self._bound,
            offset=window.start,
            limit=window.stop - window.start,
        )
