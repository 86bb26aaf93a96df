"""audit_export and audit_checkpoint from the command line."""

import csv
import io
import json
import tracemalloc

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit_app.models import AuditLog
from audit_app.services import audit_record
from tests.support import Terminal

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows():
    return [
        audit_record(event_type="user.updated", user_id="user-1", metadata={"n": 1}),
        audit_record(
            event_type="auth.sign_in_failed",
            user_agent='=HYPERLINK("http://evil")',
            ip_address="198.51.100.4",
        ),
    ]


def export(*args) -> str:
    out = io.StringIO()
    call_command("audit_export", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_jsonl_export_writes_one_object_per_row_oldest_first(rows):
    lines = export("--format", "jsonl").splitlines()

    exported = [json.loads(line) for line in lines]
    mine = [row for row in exported if row["id"] in {r.id for r in rows}]
    assert [row["event_type"] for row in mine] == ["user.updated", "auth.sign_in_failed"]
    assert mine[0]["metadata"] == {"n": 1}
    assert mine[1]["ip_address"] == "198.51.100.4"


def test_csv_export_has_a_header_and_defuses_spreadsheet_formulas(rows, tmp_path):
    target = tmp_path / "audit.csv"

    call_command("audit_export", "--format", "csv", "--output", str(target), stderr=io.StringIO())

    records = list(csv.DictReader(target.open(newline="")))
    failed = next(r for r in records if r["event_type"] == "auth.sign_in_failed")
    assert failed["user_agent"] == '\'=HYPERLINK("http://evil")'
    assert next(r for r in records if r["id"] == str(rows[0].id))["metadata"] == '{"n": 1}'


def test_since_and_until_select_a_window(rows):
    first, second = (row.occurred_at.isoformat() for row in rows)

    def exported(*args) -> list[int]:
        return [json.loads(line)["id"] for line in export(*args).splitlines()]

    assert exported("--since", second) == [rows[1].id]
    assert exported("--since", first, "--until", second) == [rows[0].id]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "--since"),
        (["--until", "2024-02-30"], "--until"),
        (["--since", "2024-02-01", "--until", "2024-01-01"], "earlier"),
        (["--format", "xml"], "invalid choice"),
        (["--output", "/nonexistent-dir/audit.jsonl"], "cannot write"),
    ],
)
def test_bad_input_is_a_command_error(args, message):
    with pytest.raises(CommandError, match=message):
        export(*args)


def test_export_streams_in_constant_memory(tmp_path):
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {AuditLog._meta.db_table} (occurred_at, event_type, user_id,"  # noqa: S608
            " target_type, target_id, metadata, user_agent, request_id, row_mac)"
            " SELECT now(), 'user.updated', 'user-' || g, 'user', 'user-' || g,"
            " jsonb_build_object('padding', repeat('x', 500)), 'agent', '', ''"
            " FROM generate_series(1, 60000) AS g"
        )
    target = tmp_path / "audit.jsonl"

    tracemalloc.start()
    try:
        call_command("audit_export", "--output", str(target), stderr=io.StringIO())
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert sum(1 for _ in target.open()) >= 60000
    # The rows as Python objects would take well over 60 MB; streaming holds a
    # few thousand at a time.
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_checkpoint_command_seals_new_rows_once(rows):
    out = io.StringIO()
    call_command("audit_checkpoint", "--wait", "5", stdout=out)
    call_command("audit_checkpoint", "--wait", "5", stdout=out)

    first, second = out.getvalue().splitlines()
    assert first.startswith("checkpoint ") and f", {rows[-1].id}]" in first
    assert second == "nothing new to seal"


def test_audit_export_draws_its_bar_on_stderr_unless_the_rows_are_on_that_screen(rows, tmp_path):
    stderr = Terminal()
    call_command("audit_export", "--output", str(tmp_path / "out.jsonl"), stderr=stderr)
    assert f"exporting [{'#' * 30}] 2/2" in stderr.getvalue()

    stderr = Terminal()
    call_command("audit_export", stdout=Terminal(), stderr=stderr)
    assert "exporting" not in stderr.getvalue()


def test_audit_verify_draws_its_bar_on_a_terminal_only(rows):
    stderr = Terminal()
    call_command("audit_verify", stdout=io.StringIO(), stderr=stderr)
    assert "\rverifying [" in stderr.getvalue()

    piped = io.StringIO()
    call_command("audit_verify", stdout=io.StringIO(), stderr=piped)
    assert piped.getvalue() == ""
