"""Pagination for API lists: one rule for `limit`, `cursor` and unknown query parameters."""

import functools
import re
from datetime import datetime
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

from django.core import signing
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import pagination, serializers
from rest_framework.exceptions import NotFound
from rest_framework.fields import empty
from rest_framework.utils.urls import replace_query_param

_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
# Cursors are signed: one that no `next` or `previous` link carried is refused outright,
# whatever it decodes to (base64 of "p=zzz" is a fine position for a list ordered by name).
_CURSOR_SIGNER = signing.Signer(salt="sv_sdk.api.pagination.cursor")


def refuse_unknown_parameters(request, allowed) -> None:
    """400 naming every query parameter that is not in `allowed`.

    A misspelt filter (`?user=` for `?user_id=`) must not pass for "no filter".
    """
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise serializers.ValidationError({name: ["Unknown query parameter."] for name in unknown})


@functools.cache
def _field_names(serializer_class) -> frozenset[str]:
    # Building the serializer just to learn its fields cost the users list
    # (`?limit=50`) 0.18 ms of CPU per request (issue 20).
    fields = serializer_class().fields
    # The shortcut in list_filters holds only while no filter is required or defaulted.
    if any(f.required or f.default is not empty for f in fields.values()):
        raise ImproperlyConfigured(
            f"{serializer_class.__name__}: list filters must be optional, without defaults"
        )
    return frozenset(fields)


def list_filters(view) -> dict:
    """The view's `filter_serializer` applied to the query string: its validated filters.

    A plain dict, not the QueryDict: DRF reads an empty form value as "not given",
    while `?role=` is a blank filter and refused like any other. Every filter is
    optional, without a default: with none of them in the query string (the
    common case on busy lists, `?limit=50` included) there is nothing to build.
    """
    if not view.request.query_params.keys() & _field_names(view.filter_serializer):
        return {}
    filters = view.filter_serializer(data=view.request.query_params.dict())
    filters.is_valid(raise_exception=True)
    return filters.validated_data


class CursorPagination(pagination.CursorPagination):
    """Cursor pages of 1 to 200 rows (`?limit=`, default 50); subclasses set `ordering`.

    Every list answers a malformed `limit` or `cursor`, or a query parameter
    that is neither these nor one of the view's `filter_serializer` fields,
    with a 400 naming it.
    """

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    invalid_cursor_message = "Invalid cursor."

    def paginate_queryset(self, queryset, request, view=None):
        paging = {self.cursor_query_param, self.page_size_query_param}
        if set(request.query_params) - paging:  # else nothing to build, on busy lists
            filters = getattr(view, "filter_serializer", None)
            refuse_unknown_parameters(
                request, paging | set(filters().fields if filters is not None else ())
            )
        self._model = getattr(queryset, "model", None)
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not _WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= self.max_page_size:
            raise serializers.ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def encode_cursor(self, cursor):
        # DRF's cursor text, written onto an empty URL (only the text is wanted
        # here), then signed into the list's own URL: one pass over that URL.
        base_url, self.base_url = self.base_url, ""
        try:
            written = super().encode_cursor(cursor)
        finally:
            self.base_url = base_url
        plain = parse_qs(urlsplit(written).query)[self.cursor_query_param][0]
        return replace_query_param(base_url, self.cursor_query_param, _CURSOR_SIGNER.sign(plain))

    def decode_cursor(self, request):
        # A made-up cursor is bad input (400), not a missing page (DRF's 404).
        signed = request.query_params.get(self.cursor_query_param)
        if signed is None:
            return None
        try:
            plain = _CURSOR_SIGNER.unsign(signed)
            cursor = super().decode_cursor(
                SimpleNamespace(query_params={self.cursor_query_param: plain})
            )
        except (signing.BadSignature, NotFound):
            cursor = None
        # A cursor signed for another list can still carry a position this one cannot hold.
        if cursor is None or not self._position_is_valid(cursor.position):
            raise serializers.ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            )
        return cursor

    def _position_is_valid(self, position) -> bool:
        if position is None or self._model is None:
            return True
        ordering = self.ordering[0] if isinstance(self.ordering, list | tuple) else self.ordering
        try:
            field = self._model._meta.get_field(ordering.lstrip("-"))
        except FieldDoesNotExist:
            return True  # an annotation: compared as text
        try:
            value = field.to_python(position)
        except DjangoValidationError:
            return False
        return not (isinstance(value, datetime) and value.tzinfo is None)

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The cursor of a `next` or `previous` link (signed: any other"
                " value is a 400).",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page, 1 to {self.max_page_size}.",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                    "default": self.page_size,
                },
            },
        ]


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
