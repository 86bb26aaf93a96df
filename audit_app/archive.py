"""The file a retention run makes of one month of the audit log, and its offline check.

An archive is a gzip-compressed tar of four members:

- `rows.jsonl`: the month's rows in id order, every column and the row's MAC;
- `checkpoints.jsonl`: every checkpoint sealing any of those rows, in chain order;
- `seals.txt`: `id:row_mac` of the other months' rows those checkpoints also sealed,
  as far as they were still in the database, so the checkpoints' digests can be
  recomputed from the archive alone;
- `manifest.json`: the month, counts, first and last ids, the SHA-256 of each other
  member, and a MAC over all of it with the audit key.

Checking one needs the audit key (settings) and the file, not the database.
"""

import hashlib
import heapq
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

from .evidence import (
    checkpoint_is_authentic,
    digest_line,
    manifest_is_authentic,
    manifest_mac,
    row_is_authentic,
)
from .models import READABLE_FIELDS
from .partitions import month_end

FORMAT = "sv_sdk audit archive v1"
ROWS, CHECKPOINTS, SEALS, MANIFEST = "rows.jsonl", "checkpoints.jsonl", "seals.txt", "manifest.json"
ROW_FIELDS = (*READABLE_FIELDS, "row_mac")
CHECKPOINT_FIELDS = (
    "id",
    "after_id",
    "last_id",
    "row_count",
    "missing_ids",
    "digest",
    "previous_mac",
    "mac",
)


def _row_json(row: dict) -> bytes:
    values = {name: row[name] for name in ROW_FIELDS}
    values["occurred_at"] = row["occurred_at"].astimezone(UTC).isoformat()
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _add(tar: tarfile.TarFile, name: str, data: io.BufferedIOBase, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, data)


@dataclass(frozen=True)
class Written:
    manifest: dict
    sha256: str  # of the whole file


def write_archive(
    path: Path,
    *,
    month: date,
    partition: str,
    rows: Iterable[dict],
    checkpoints: list,
    seals: list[tuple[int, str]],
    kept_ids: list[int],
) -> Written:
    """Write the archive of `month` to `path`; `rows` in id order, streamed."""
    files: dict[str, dict] = {}
    count, first_id, last_id = 0, None, None
    with tempfile.TemporaryFile(dir=path.parent) as spool:
        digest = hashlib.sha256()
        for row in rows:
            line = _row_json(row)
            spool.write(line)
            digest.update(line)
            count += 1
            first_id = row["id"] if first_id is None else first_id
            last_id = row["id"]
        files[ROWS] = {"sha256": digest.hexdigest(), "bytes": spool.tell()}
        members = {
            CHECKPOINTS: b"".join(
                json.dumps({name: getattr(c, name) for name in CHECKPOINT_FIELDS}).encode() + b"\n"
                for c in checkpoints
            ),
            SEALS: b"".join(digest_line(row_id, mac) for row_id, mac in seals),
        }
        for name, data in members.items():
            files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        manifest = {
            "format": FORMAT,
            "partition": partition,
            "month": month.strftime("%Y-%m"),
            "from": datetime(month.year, month.month, 1, tzinfo=UTC).isoformat(),
            "until": month_end(month).isoformat(),
            "rows": count,
            "first_id": first_id,
            "last_id": last_id,
            "checkpoints": len(checkpoints),
            "kept_ids": kept_ids,
            "files": files,
            "created_at": datetime.now(UTC).isoformat(),
        }
        manifest["mac"] = manifest_mac(manifest)
        manifest_bytes = json.dumps(manifest, indent=2).encode() + b"\n"
        with path.open("xb") as out:
            with tarfile.open(fileobj=out, mode="w:gz") as tar:
                _add(tar, MANIFEST, io.BytesIO(manifest_bytes), len(manifest_bytes))
                spool.seek(0)
                _add(tar, ROWS, spool, files[ROWS]["bytes"])
                for name, data in members.items():
                    _add(tar, name, io.BytesIO(data), len(data))
            out.flush()
            # On disk before the caller commits dropping the month from the database.
            os.fsync(out.fileno())
    whole = hashlib.sha256()
    with path.open("rb") as written:
        for block in iter(lambda: written.read(1 << 20), b""):
            whole.update(block)
    return Written(manifest=manifest, sha256=whole.hexdigest())


# Offline check ------------------------------------------------------------------------


class ArchiveUnreadable(Exception):
    """The file is not an audit archive at all."""


@dataclass
class ArchiveCheck:
    month: str = ""
    rows: int = 0
    checkpoints: int = 0
    # Checkpoints also sealing rows of a month archived earlier, whose digest this
    # archive alone cannot recompute (that month's archive did).
    checked_in_part: int = 0
    problems: list[str] = field(default_factory=list)


def _member(tar: tarfile.TarFile, name: str):
    try:
        member = tar.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        raise ArchiveUnreadable(f"it has no {name}")
    return member


def _lines(tar: tarfile.TarFile, name: str) -> Iterator[bytes]:
    yield from _member(tar, name)


def _sha256(tar: tarfile.TarFile, name: str) -> str:
    digest = hashlib.sha256()
    with _member(tar, name) as member:
        for block in iter(lambda: member.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _row(line: bytes) -> SimpleNamespace:
    values = json.loads(line)
    values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
    return SimpleNamespace(**values)


def verify_archive(path: Path) -> ArchiveCheck:
    """Check an archive against its manifest, its MACs and its checkpoints' digests."""
    try:
        tar = tarfile.open(path, mode="r:gz")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveUnreadable(str(exc)) from None
    with tar:
        try:
            return _verify(tar)
        except (tarfile.TarError, EOFError, ValueError, KeyError, TypeError) as exc:
            raise ArchiveUnreadable(f"damaged: {exc}") from None


def _verify(tar: tarfile.TarFile) -> ArchiveCheck:
    manifest = json.loads(_member(tar, MANIFEST).read())
    if manifest.get("format") != FORMAT:
        raise ArchiveUnreadable(f"unknown format {manifest.get('format')!r}")
    check = ArchiveCheck(month=manifest["month"])
    problems = check.problems
    if not manifest_is_authentic(manifest):
        problems.append("the manifest does not match its MAC: altered, or made with another key")
    for name, expected in manifest["files"].items():
        if _sha256(tar, name) != expected["sha256"]:
            problems.append(f"{name} differs from the manifest's SHA-256: the file was altered")

    checkpoints = [SimpleNamespace(**json.loads(line)) for line in _lines(tar, CHECKPOINTS)]
    check.checkpoints = len(checkpoints)
    for previous, checkpoint in zip([None, *checkpoints], checkpoints, strict=False):
        if not checkpoint_is_authentic(checkpoint):
            problems.append(f"checkpoint {checkpoint.id} does not match its MAC")
        if previous is not None and (
            checkpoint.after_id != previous.last_id or checkpoint.previous_mac != previous.mac
        ):
            problems.append(f"checkpoint {checkpoint.id} does not follow checkpoint {previous.id}")

    lower = datetime.fromisoformat(manifest["from"])
    upper = datetime.fromisoformat(manifest["until"])
    last_id = None

    def rows() -> Iterator[tuple[int, str]]:
        nonlocal last_id
        for line in _lines(tar, ROWS):
            row = _row(line)
            check.rows += 1
            if last_id is not None and row.id <= last_id:
                problems.append(f"row {row.id} is out of id order")
            last_id = row.id
            if not row_is_authentic(row):
                problems.append(f"row {row.id} does not match its MAC: altered")
            if not lower <= row.occurred_at < upper:
                problems.append(f"row {row.id} is not of {check.month}")
            yield row.id, row.row_mac

    def seals() -> Iterator[tuple[int, str]]:
        for line in _lines(tar, SEALS):
            row_id, mac = line.decode().rstrip("\n").split(":")
            yield int(row_id), mac

    _check_digests(check, checkpoints, heapq.merge(rows(), seals()))
    if check.rows != manifest["rows"]:
        problems.append(f"{check.rows} rows, the manifest says {manifest['rows']}")
    return check


def _check_digests(check: ArchiveCheck, checkpoints: list, lines) -> None:
    counts = [0] * len(checkpoints)
    digests = [hashlib.sha256() for _ in checkpoints]
    at = 0
    for row_id, mac in lines:
        while at < len(checkpoints) and checkpoints[at].last_id < row_id:
            at += 1
        if at == len(checkpoints) or checkpoints[at].after_id >= row_id:
            check.problems.append(f"row {row_id} is sealed by no checkpoint of the archive")
            continue
        if any(first <= row_id <= last for first, last in checkpoints[at].missing_ids):
            check.problems.append(f"row {row_id} was not there when checkpoint was taken")
        counts[at] += 1
        digests[at].update(digest_line(row_id, mac))
    for index, checkpoint in enumerate(checkpoints):
        if counts[index] == checkpoint.row_count:
            if digests[index].hexdigest() != checkpoint.digest:
                check.problems.append(
                    f"the rows of checkpoint {checkpoint.id} differ from its digest"
                )
        elif counts[index] < checkpoint.row_count and index in (0, len(checkpoints) - 1):
            check.checked_in_part += 1
        else:
            check.problems.append(
                f"checkpoint {checkpoint.id} sealed {checkpoint.row_count} rows,"
                f" the archive holds {counts[index]}"
            )
