"""Admin building blocks every app shares."""

import csv
import json
from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone


class ReadOnlyAdminMixin:
    """Rows shown in the admin but never added or edited there: their services write them.

    For a ModelAdmin or an inline. Deleting stays with the model's delete permission when
    `deletable` is true (a row an operator may withdraw); otherwise it is refused too.
    """

    deletable = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.deletable and super().has_delete_permission(request, obj)


class WithinFilter(admin.SimpleListFilter):
    """Rows whose `field` (a datetime) lies within the last N days, `?within=<N>d`.

    A bounded period instead of a date hierarchy, whose choices are a DISTINCT over the
    table. Subclasses set `title`, `field` and the `periods` they offer.
    """

    parameter_name = "within"
    field = ""
    periods = {"1d": ("last 24 hours", 1), "7d": ("last 7 days", 7), "30d": ("last 30 days", 30)}

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _days) in self.periods.items()]

    def queryset(self, request, queryset):
        if self.value() not in self.periods:
            return queryset
        days = self.periods[self.value()][1]
        return queryset.filter(**{f"{self.field}__gte": timezone.now() - timedelta(days=days)})


class KeysetChangeList(ChangeList):
    """A changelist paged by primary key (newest first) that never counts the table.

    `?before=<pk>` shows the page older than a row, `?after=<pk>` the page newer than
    one, `?last=1` the oldest page: each one index range scan, as fast at the last
    page of ten million rows as at the first. The total shown is PostgreSQL's
    estimate for an unfiltered list, and nothing for a filtered one.
    """

    def get_filters_params(self, params=None):
        lookup_params = super().get_filters_params(params)
        for name in KEYSET_PARAMS:
            lookup_params.pop(name, None)
        return lookup_params

    def _cursor(self, request, name):
        value = request.GET.get(name)
        if value is None:
            return None
        try:
            return self.model._meta.pk.to_python(value)
        except ValidationError as exc:
            raise IncorrectLookupParameters(exc) from exc

    def get_results(self, request):
        size = self.list_per_page
        rows = self.queryset.order_by()
        before, after = self._cursor(request, "before"), self._cursor(request, "after")
        if after is not None or "last" in request.GET:
            if after is not None:
                rows = rows.filter(pk__gt=after)
            page = list(rows.order_by("pk")[: size + 1])
            more_newer = len(page) > size
            page = page[:size][::-1]
            more_older = after is not None
        else:
            if before is not None:
                rows = rows.filter(pk__lt=before)
            page = list(rows.order_by("-pk")[: size + 1])
            more_older = len(page) > size
            page = page[:size]
            more_newer = before is not None
        self.model_admin.prepare_page(request, page)
        self.result_list = page
        self.result_count = len(page)
        self.full_result_count = None
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.can_show_all = False
        self.multi_page = more_older or more_newer
        self.paginator = None
        filtered = bool(self.get_filters_params()) or bool(self.query)
        self.estimated_total = None if filtered else estimated_rows(self.model)
        keep = {name: None for name in KEYSET_PARAMS}
        # A cursor past either end gives an empty page: it still leads back to the newest.
        moved = before is not None or after is not None or "last" in request.GET
        self.keyset = {
            "newest": self.get_query_string(remove=KEYSET_PARAMS)
            if more_newer or (moved and not page)
            else "",
            "newer": self.get_query_string({**keep, "after": page[0].pk})
            if more_newer and page
            else "",
            "older": self.get_query_string({**keep, "before": page[-1].pk})
            if more_older and page
            else "",
            "oldest": self.get_query_string({**keep, "last": 1}) if more_older else "",
        }


KEYSET_PARAMS = ("before", "after", "last", "format")


def estimated_rows(model) -> int:
    """PostgreSQL's estimate of a table's rows (as of its last ANALYZE): no scan."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass",
            [model._meta.db_table],
        )
        return cursor.fetchone()[0]


class KeysetAdminMixin:
    """For a ModelAdmin of a large, append-mostly table: keyset pages, streamed exports.

    `export_fields` are the columns exported as CSV or JSONL (never a secret);
    `export_permission` is the permission the export needs besides viewing.
    """

    change_list_template = "admin/sv_sdk/keyset_change_list.html"
    sortable_by = ()
    show_full_result_count = False
    export_fields: tuple[str, ...] = ()
    export_permission = ""
    EXPORT_CHUNK = 2000

    def get_changelist(self, request, **kwargs):
        return KeysetChangeList

    def prepare_page(self, request, rows) -> None:
        """Load what a page's rows show from other tables, in one query each (a hook)."""

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm(self.export_permission)

    def changelist_view(self, request, extra_context=None):
        if self.export_fields and self.has_export_permission(request):
            url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_export")
            query = request.GET.copy()
            for name in KEYSET_PARAMS:
                query.pop(name, None)
            links = []
            for kind in EXPORT_FORMATS:
                query["format"] = kind
                links.append((kind.upper(), f"{url}?{query.urlencode()}"))
            extra_context = {**(extra_context or {}), "export_links": links}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_export"
        return [
            path("export/", self.admin_site.admin_view(self.export_view), name=name),
            *super().get_urls(),
        ]

    def export_view(self, request):
        """The filtered rows as CSV or JSONL, newest first, streamed in chunks."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        kind = request.GET.get("format", "")
        if kind not in EXPORT_FORMATS:
            return HttpResponseBadRequest("format must be csv or jsonl")
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("unknown filter")
        rows = (
            changelist.queryset.order_by("-pk")
            .values_list(*self.export_fields)
            .iterator(chunk_size=self.EXPORT_CHUNK)
        )
        lines = EXPORT_FORMATS[kind](self.export_fields, rows)
        response = StreamingHttpResponse(lines, content_type=EXPORT_TYPES[kind])
        filename = f"{self.opts.model_name}-{timezone.now():%Y%m%dT%H%M%SZ}.{kind}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class _Line:
    """A file object whose write() returns what was written, for csv.writer."""

    def write(self, value):
        return value


def _csv_lines(fields, rows):
    writer = csv.writer(_Line())
    yield writer.writerow(fields)
    for row in rows:
        yield writer.writerow(["" if value is None else _plain(value) for value in row])


def _jsonl_lines(fields, rows):
    for row in rows:
        yield json.dumps(dict(zip(fields, row, strict=True)), cls=DjangoJSONEncoder) + "\n"


def _plain(value):
    if isinstance(value, dict | list):
        value = json.dumps(value, cls=DjangoJSONEncoder)
    # A text cell a spreadsheet would run as a formula (a user agent of "=HYPERLINK(...)")
    # is quoted, as OWASP advises for CSV; JSONL carries the value untouched.
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


EXPORT_FORMATS = {"csv": _csv_lines, "jsonl": _jsonl_lines}
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}
