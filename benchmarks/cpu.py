"""CPU time used by processes of this machine, read from /proc (Linux)."""

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """CPU time `pid` has used, all its threads together (0 when it is not known)."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # it has ended (gone, or going while read)
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def parent_pid(pid: int) -> int | None:
    """The parent of `pid`, None when there is no such process here."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:  # no such process here, or it ended while read
        return None


def command_name(pid: int) -> str:
    """The name of `pid`'s program ("postgres"), "" when there is no such process here."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:  # no such process here, or it ended while read
        return ""


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and parent_pid(int(entry.name)) == pid:
            found.append(int(entry.name))
    return found


def machine_busy_seconds() -> float:
    """CPU time every core of the machine has spent busy since boot, all processes together."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait.
    return (sum(fields[:8]) - fields[3] - fields[4]) / _TICK
