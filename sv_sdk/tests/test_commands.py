"""The helpers every command shares: error messages, one rule for dates, one progress bar."""

import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management.base import CommandError, OutputWrapper

from sv_sdk.commands import Progress, error_message, parse_moment
from sv_sdk.errors import ValidationFailed
from tests.support import Terminal


def test_a_date_is_its_midnight_and_a_time_without_offset_is_in_the_project_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    paris = ZoneInfo("Europe/Paris")

    assert parse_moment("2030-01-31", "--since") == datetime(2030, 1, 31, tzinfo=paris)
    assert parse_moment("2030-01-31T18:00", "--since") == datetime(2030, 1, 31, 18, tzinfo=paris)
    assert parse_moment("2030-01-31T18:00Z", "--since") == datetime(2030, 1, 31, 18, tzinfo=UTC)
    assert parse_moment(None, "--since") is None


@pytest.mark.parametrize("value", ["tomorrow", "2030-02-31", "2030-01-31T25:00", ""])
def test_anything_else_is_a_command_error_naming_the_option(value):
    with pytest.raises(CommandError, match=r"--until: .* is not an ISO 8601 date"):
        parse_moment(value, "--until")


def test_the_bar_draws_on_a_terminal_and_lines_printed_meanwhile_get_their_own_line():
    screen = Terminal()
    with Progress(OutputWrapper(screen), label="checking", total=2) as progress:
        progress.advance()
        progress.write("user-1: fixed")
        progress.advance()

    text = screen.getvalue()
    assert text.startswith(f"\rchecking [{'#' * 15}{'.' * 15}] 1/2\r\033[Kuser-1: fixed\n")
    assert text.endswith(f"\rchecking [{'#' * 30}] 2/2\n")


def test_the_bar_is_silent_when_piped():
    piped = io.StringIO()
    with Progress(OutputWrapper(piped), label="checking", total=2) as progress:
        progress.advance(2)
        progress.write("user-1: fixed")

    assert piped.getvalue() == "user-1: fixed\n"


def test_a_refusal_reads_as_its_detail_then_each_fields_messages():
    refusal = ValidationFailed(
        "The user was not created.",
        errors={
            "email": ["Enter a valid email address."],
            "password": ["Too short.", "Too common."],
        },
    )

    assert error_message(refusal) == (
        "The user was not created. email: Enter a valid email address.;"
        " password: Too short. Too common."
    )
    assert error_message(ValidationFailed()) == "Some fields are invalid."
