"""Read replicas: which reads may go to one, which one, and reading one's own writes.

Reads go to the primary unless code marks them lag-tolerant with `lag_tolerant`
(the list views, the audit log, the admin's change lists and dashboard). Even
then they stay on the primary inside a transaction, inside `on_primary` (the
session check and permission checks), when no replica is in the rotation, and
when the client's last write (the WAL position it carries back in the
`SV-Read-After` header or cookie) has not been replayed on any replica yet.
Writes always go to the primary. See docs/scaling.md.
"""

import functools
import logging
import os
import random
import re
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.template.response import TemplateResponse

from sv_sdk import metrics
from sv_sdk.db import params as db_params
from sv_sdk.net import cookie_set

logger = logging.getLogger(__name__)

HEADER = "SV-Read-After"
COOKIE = "sv_read_after"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
# A position no replica reaches: what an unreadable SV-Read-After asks for (the primary).
_UNREACHABLE = 1 << 64


def lsn_value(text: str | None) -> int | None:
    """A WAL position as PostgreSQL writes it ("16/B374D848") as a number; None if malformed."""
    match = _LSN.match(text or "")
    return (int(match[1], 16) << 32) | int(match[2], 16) if match else None


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def replica_aliases() -> list[str]:
    return settings.SV_DATABASE_REPLICAS


@dataclass
class _Reads:
    """What one request (or one lag-tolerant call outside a request) knows about its reads."""

    after: int | None = None  # the client's last write position; None: none known
    tolerant: bool = False  # inside lag_tolerant
    alias: str | None = None  # where its lag-tolerant reads go, once chosen
    wrote: bool = False  # the router saw a write


_reads: ContextVar[_Reads | None] = ContextVar("sv_reads", default=None)
_primary_only: ContextVar[bool] = ContextVar("sv_primary_only", default=False)


@contextmanager
def on_primary():
    """Reads inside this (a context, or a decorator: `@on_primary()`) go to the primary,
    lag-tolerant or not.

    For the reads that decide security (the session check, permission checks):
    a revoked session or role must stop working at once, not after a replica
    replays the revocation.
    """
    token = _primary_only.set(True)
    try:
        yield
    finally:
        _primary_only.reset(token)


def _request_of(args) -> object | None:
    return next((a for a in args if hasattr(a, "method") and hasattr(a, "META")), None)


def lag_tolerant(view):
    """Let `view`'s reads go to a replica: a view (or handler) that only reads and can show
    data a little behind the primary, as lists and reports can.

    Only requests with a safe method are affected; the view's own permission
    checks still read the primary (`on_primary`). Should the replica fail
    while the view runs, the view runs again on the primary: reads only, so
    running it twice is safe, and the client sees no error.
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        request = _request_of(args)
        if not replica_aliases() or (request is not None and request.method not in _SAFE_METHODS):
            return view(*args, **kwargs)
        reads = _reads.get()
        token = None
        if reads is None:
            reads = _Reads()
            token = _reads.set(reads)
        was_tolerant, reads.tolerant = reads.tolerant, True
        try:
            try:
                return _rendered(view(*args, **kwargs))
            except DatabaseError:
                failed = reads.alias
                if failed is None or failed == DEFAULT_DB_ALIAS:
                    raise
                logger.warning("replica %s failed in a read; the primary answers", failed)
                _drop(failed)
                reads.alias = DEFAULT_DB_ALIAS
                metrics.REPLICA_READS.labels(served_by="primary", reason="replica_failed").inc()
                return _rendered(view(*args, **kwargs))
        finally:
            reads.tolerant = was_tolerant
            if token is not None:
                _reads.reset(token)

    return wrapper


def _rendered(response):
    # A template response renders (and so reads) after the view returns, outside
    # lag_tolerant: render it here, where a replica failure can still fall back.
    if isinstance(response, TemplateResponse) and not response.is_rendered:
        response.render()
    return response


def _drop(alias: str) -> None:
    """Forget this thread's connection to a replica that failed, and check it again soon."""
    try:
        connections[alias].close()
    except DatabaseError:
        pass
    MONITOR.recheck()


class ReplicaRouter:
    """Django's database router: lag-tolerant reads to a replica in the rotation, the rest to
    the primary."""

    def db_for_read(self, model, **hints):
        if _primary_only.get():
            return DEFAULT_DB_ALIAS
        reads = _reads.get()
        if reads is None or not reads.tolerant:
            return _not_from_replica(hints)
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            # A transaction reads what it is about to write, from the primary.
            return DEFAULT_DB_ALIAS
        if reads.alias is None:
            reads.alias = _choose(reads.after)
        return reads.alias

    def db_for_write(self, model, **hints):
        reads = _reads.get()
        if reads is not None:
            reads.wrote = True
        return _not_from_replica(hints)

    def allow_relation(self, obj1, obj2, **hints):
        # Every alias is the same database, some of them a little behind.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if db in replica_aliases() else None


def _not_from_replica(hints: dict) -> str | None:
    """None (Django's own choice: the alias an instance came from, else the default), but the
    primary for an instance read from a replica: its relations and its writes go there."""
    state = getattr(hints.get("instance"), "_state", None)
    if state is not None and state.db in replica_aliases():
        return DEFAULT_DB_ALIAS
    return None


def _choose(after: int | None) -> str:
    """The replica for one request's lag-tolerant reads, or the primary."""
    candidates = MONITOR.in_rotation()
    if not candidates:
        metrics.REPLICA_READS.labels(served_by="primary", reason="no_replica").inc()
        return DEFAULT_DB_ALIAS
    random.shuffle(candidates)
    if after is not None:
        caught_up = [alias for alias, replayed in candidates if replayed >= after]
        if not caught_up and after < _UNREACHABLE:
            # The last check is up to an interval old; ask the replicas where they are now.
            caught_up = [alias for alias, _ in candidates if (_replayed_now(alias) or 0) >= after]
        if not caught_up:
            metrics.REPLICA_READS.labels(served_by="primary", reason="behind").inc()
            return DEFAULT_DB_ALIAS
        candidates = [(alias, 0) for alias in caught_up]
    metrics.REPLICA_READS.labels(served_by="replica", reason="in_rotation").inc()
    return candidates[0][0]


def _replayed_now(alias: str) -> int | None:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
            return lsn_value(cursor.fetchone()[0])
    except DatabaseError:
        _drop(alias)
        return None


def primary_position() -> str | None:
    """The primary's current WAL position, which covers every transaction committed so far."""
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            return cursor.fetchone()[0]
    except DatabaseError:
        logger.warning("could not read the primary's WAL position", exc_info=True)
        return None


@dataclass
class ReplicaState:
    alias: str
    reachable: bool = False
    replayed: int = 0  # WAL position replayed, as of the last check
    lag: float | None = None  # seconds behind the primary; None: unknown


# One query per replica per check: still a replica, how far replayed, and since when
# it has replayed nothing (which matters only if it is behind the primary).
_CHECK_SQL = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
    " EXTRACT(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
)


class ReplicaMonitor:
    """Each process's view of its replicas, checked at most once per
    SV_REPLICA_CHECK_INTERVAL by whichever request finds it due (the others go on with
    the last answer), on connections of its own with a short connect timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, ReplicaState] = {}
        self._connections: dict[str, psycopg.Connection] = {}
        self._due = 0.0
        self._pid = os.getpid()

    def states(self) -> dict[str, ReplicaState]:
        self._refresh_if_due()
        return dict(self._states)

    def in_rotation(self) -> list[tuple[str, int]]:
        """(alias, replayed position) of every reachable replica within the lag bound."""
        bound = settings.SV_REPLICA_MAX_LAG
        return [
            (state.alias, state.replayed)
            for state in self.states().values()
            if state.reachable and state.lag is not None and state.lag <= bound
        ]

    def recheck(self) -> None:
        """Check again at the next chance instead of after the interval."""
        self._due = 0.0

    def _refresh_if_due(self) -> None:
        if time.monotonic() < self._due or not self._lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() >= self._due:
                self._check()
                self._due = time.monotonic() + settings.SV_REPLICA_CHECK_INTERVAL
        finally:
            self._lock.release()

    def _check(self) -> None:
        if os.getpid() != self._pid:
            # A forked worker: its parent's connections are not its own.
            self._connections, self._pid = {}, os.getpid()
        primary = lsn_value(primary_position())
        states = {}
        for alias in replica_aliases():
            state = states[alias] = ReplicaState(alias)
            try:
                in_recovery, replayed, idle = self._connection(alias).execute(_CHECK_SQL).fetchone()
            except psycopg.Error as exc:
                self._forget(alias)
                self._report(alias, f"unreachable ({type(exc).__name__})")
                continue
            state.reachable = bool(in_recovery)
            state.replayed = lsn_value(replayed) or 0
            if primary is not None and state.replayed >= primary:
                state.lag = 0.0
            else:
                # Behind: what it lacks was committed after the last transaction it replayed.
                state.lag = idle
            if not in_recovery:
                self._report(alias, "not in recovery (promoted?)")
            elif state.lag is None or state.lag > settings.SV_REPLICA_MAX_LAG:
                self._report(alias, f"lagging ({state.lag if state.lag is not None else '?'} s)")
            else:
                self._report(alias, None)
        self._states = states

    def _report(self, alias: str, trouble: str | None) -> None:
        # Changes only: a replica down for an hour logs twice, not every interval.
        before = self._states.get(alias)
        was_in = before is None or (
            before.reachable
            and before.lag is not None
            and before.lag <= settings.SV_REPLICA_MAX_LAG
        )
        if trouble is not None and was_in:
            logger.warning("replica %s out of the rotation: %s", alias, trouble)
        elif trouble is None and not was_in:
            logger.warning("replica %s back in the rotation", alias)

    def _connection(self, alias: str) -> psycopg.Connection:
        conn = self._connections.get(alias)
        if conn is None or conn.closed:
            conn = self._connections[alias] = psycopg.connect(
                **connect_params(connections.settings[alias]), autocommit=True
            )
        return conn

    def _forget(self, alias: str) -> None:
        conn = self._connections.pop(alias, None)
        if conn is not None:
            conn.close()


# Options Django consumes itself; the rest of OPTIONS (sslmode, ...) is for libpq.
def connect_params(database: dict) -> dict:
    """psycopg.connect() arguments for a DATABASES entry, with the replicas' connect timeout."""
    return db_params.connect_params(database, connect_timeout=settings.SV_REPLICA_CONNECT_TIMEOUT)


MONITOR = ReplicaMonitor()


class ReadYourWritesMiddleware:
    """Carries a client's last write position: read from the request, written on the response.

    After a request that may have written (an unsafe method, or a write the
    router saw), the response carries the primary's WAL position in the
    `SV-Read-After` header and cookie. A request that carries it back (header
    or cookie, the later of the two) reads from a replica only once that
    replica has replayed up to it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not replica_aliases():
            return self.get_response(request)
        reads = _Reads(after=_client_position(request))
        token = _reads.set(reads)
        try:
            response = self.get_response(request)
        finally:
            _reads.reset(token)
        if reads.wrote or request.method not in _SAFE_METHODS:
            position = primary_position()
            if position is not None:
                response[HEADER] = position
                cookie_set(
                    response,
                    COOKIE,
                    position,
                    max_age=max(300, 2 * int(settings.SV_REPLICA_MAX_LAG)),
                    secure=settings.SESSION_COOKIE_SECURE,
                )
        return response


def _client_position(request) -> int | None:
    values = [request.headers.get(HEADER), request.COOKIES.get(COOKIE)]
    positions = [lsn_value(v.strip()) for v in values if v]
    if not positions:
        return None
    # Malformed: the position is unknown, so only the primary is sure to have the write.
    return max(_UNREACHABLE if p is None else p for p in positions)
