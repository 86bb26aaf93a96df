"""utc_text, the one way an API response writes a datetime."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from rest_framework import serializers

from sv_sdk.api.serializers import utc_text

# DRF's own field, fixed to UTC: what every serializer of the API writes.
_FIELD = serializers.DateTimeField(default_timezone=UTC)


@pytest.mark.parametrize(
    "moment",
    [
        # As psycopg loads a timestamptz on a UTC connection.
        datetime(2026, 11, 29, 10, 54, 23, 875306, tzinfo=ZoneInfo("UTC")),
        datetime(2026, 1, 1, tzinfo=UTC),  # no fraction: none written
        datetime(2026, 1, 1, 0, 0, 0, 120000, tzinfo=UTC),  # trailing zeros kept
        datetime(2026, 1, 31, 23, 59, 59, 5, tzinfo=ZoneInfo("Europe/London")),  # +00:00 in winter
        datetime(2026, 7, 1, 0, 30, tzinfo=ZoneInfo("Europe/London")),  # +01:00: the day before
        datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 7, 1, 12, 0),  # naive: taken as UTC
    ],
)
def test_utc_text_writes_what_the_api_serializers_write(moment):
    written = utc_text(moment)
    assert written == _FIELD.to_representation(moment)
    assert written.endswith("Z")
