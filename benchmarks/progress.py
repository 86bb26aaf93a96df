"""What `make bench` is doing while it runs: a bar on a terminal, plain lines otherwise (CI).

Written to stderr, so the results on stdout stay a clean report. Stages say where the run
is; `advance` says how far a long loop or fill has got within one.
"""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

BAR_WIDTH = 30
# Without a terminal a line per update would flood a CI log: at most one per this many
# seconds within a stage, and always the last one.
PLAIN_INTERVAL = 10.0


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes:02d}:{seconds:02d}"


class Progress:
    def __init__(self, stream: TextIO | None = None, *, now=time.monotonic):
        self.stream = stream or sys.stderr
        self.now = now
        self.started = now()
        self.stage_name = ""
        self.last_line = float("-inf")
        self.bar_open = False

    @property
    def is_terminal(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def _elapsed(self) -> str:
        return _clock(self.now() - self.started)

    def _end_bar(self) -> None:
        if self.bar_open:
            self.stream.write("\n")
            self.bar_open = False

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Announce `name`, and how long it took once it is done."""
        self._end_bar()
        self.stage_name = name
        self.last_line = float("-inf")
        began = self.now()
        self.stream.write(f"[{self._elapsed()}] {name} ...\n")
        self.stream.flush()
        yield
        self._end_bar()
        self.stream.write(f"[{self._elapsed()}] {name}: done in {_clock(self.now() - began)}\n")
        self.stream.flush()

    def advance(self, done: int, total: int, unit: str = "rows") -> None:
        """`done` of `total` `unit` (rows filled, calls timed) in the current stage."""
        fraction = done / total if total else 1.0
        counts = f"{done:,}/{total:,} {unit}"
        if self.is_terminal:
            filled = int(BAR_WIDTH * fraction)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self.stream.write(
                f"\r[{self._elapsed()}] {self.stage_name} [{bar}] {fraction:4.0%} {counts}"
            )
            self.bar_open = True
        elif done >= total or self.now() - self.last_line >= PLAIN_INTERVAL:
            self.stream.write(f"[{self._elapsed()}] {self.stage_name}: {counts} ({fraction:.0%})\n")
            self.last_line = self.now()
        self.stream.flush()


# The run's one reporter: the stages in __main__ and the loops inside them share it.
_current = Progress()


def start(stream: TextIO | None = None) -> Progress:
    """Begin a run's progress (elapsed time counts from here)."""
    global _current
    _current = Progress(stream)
    return _current


def stage(name: str):
    return _current.stage(name)


def advance(done: int, total: int, unit: str = "rows") -> None:
    _current.advance(done, total, unit)
