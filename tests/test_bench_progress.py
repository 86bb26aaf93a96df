"""make bench's progress: a bar on a terminal, plain lines in CI, stage and elapsed time in both."""

import io

from benchmarks.progress import PLAIN_INTERVAL, Progress
from tests.support import Terminal


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_terminal_gets_one_redrawn_bar_per_stage_with_rows_and_elapsed_time():
    out, clock = Terminal(), Clock()
    progress = Progress(out, now=clock)
    with progress.stage("audit log"):
        for done in (250_000, 500_000, 1_000_000):
            clock.now += 30
            progress.advance(done, 1_000_000)

    text = out.getvalue()
    assert text.startswith("[00:00] audit log ...\n")
    assert text.count("\r") == 3  # redrawn in place, not one line each
    assert "\r[01:30] audit log [" + "#" * 30 + "] 100% 1,000,000/1,000,000 rows" in text
    assert " 25% 250,000/1,000,000 rows" in text
    assert text.endswith("\n[01:30] audit log: done in 01:30\n")


def test_without_a_terminal_it_writes_plain_lines_at_most_every_few_seconds_and_the_last():
    out, clock = io.StringIO(), Clock()
    progress = Progress(out, now=clock)
    with progress.stage("user_onboard latency"):
        for done in range(100, 1001, 100):
            clock.now += PLAIN_INTERVAL / 4
            progress.advance(done, 1000, "calls")

    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "#" not in out.getvalue()
    assert lines[0] == "[00:00] user_onboard latency ..."
    assert lines[1] == "[00:02] user_onboard latency: 100/1,000 calls (10%)"
    assert lines[-2] == "[00:25] user_onboard latency: 1,000/1,000 calls (100%)"
    assert lines[-1] == "[00:25] user_onboard latency: done in 00:25"
    assert len(lines) < 10  # not one per update
