"""sv_sdk beside better-auth 1.7: the same operations under wrk, each server on the same core."""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from statistics import median
from urllib.parse import quote

from django.conf import settings
from django.utils import timezone
from psycopg import sql

from auth_app.models import Session
from auth_app.tokens import token_hash
from platform_app.flows import user_onboard
from reliability.servers import LOAD_ENVIRONMENT, ROOT, free_port, gunicorn

from . import progress
from .cpu import cpu_seconds, parent_pid
from .database import connect, maintenance_connection
from .http import worker_settings
from .onboarding import hash_cost
from .profile import Profile, profile_request
from .profile import lines as profile_lines
from .tables import markdown_table, text_table
from .targets import Target

PEER_DIR = ROOT / "tests" / "better_auth"
PEER_VERSION = "1.7.25"
PASSWORD = "peer-bench-Correct-Horse-42"  # noqa: S105 (the bench users' only)
# Each sign-out ends one session: enough for the fastest server over every round.
SIGN_OUT_TOKENS = 40_000
LISTED_SESSIONS = 5  # the list-sessions user's sessions, on both servers
ROUNDS = 3

# (label, connections, what it needs); the paths differ per server, the work does not.
OPERATIONS = [
    ("session check (bearer)", 16, "session"),
    ("sign-in", 4, "sign_in"),
    ("sign-up", 4, "sign_up"),
    ("sign-out", 4, "sign_out"),
    ("list sessions", 16, "sessions"),
]
# What each operation sends, per server: (method, path, body).
REQUESTS = {
    "sv_sdk": {
        "session": ("GET", "/api/v1/auth/session", None),
        "sign_in": ("POST", "/api/v1/auth/sign-in", "sign_in"),
        "sign_up": ("POST", "/api/v1/auth/sign-up", "sign_up"),
        "sign_out": ("POST", "/api/v1/auth/sign-out", None),
        "sessions": ("GET", "/api/v1/auth/sessions", None),
    },
    "better-auth": {
        "session": ("GET", "/api/auth/get-session", None),
        "sign_in": ("POST", "/api/auth/sign-in/email", "sign_in"),
        "sign_up": ("POST", "/api/auth/sign-up/email", "sign_up"),
        "sign_out": ("POST", "/api/auth/sign-out", None),
        "sessions": ("GET", "/api/auth/list-sessions", None),
    },
}

# wrk's script: bearer tokens from a file (each used once) or one fixed token, a unique
# address per sign-up, and the summary as one JSON line at the end.
_WRK_SCRIPT = """
local method, path, body_kind = "{method}", "{path}", "{body}"
local tag, email, password = "{tag}", "{email}", "{password}"
local token_file, fixed_token = "{token_file}", "{token}"
local thread_count = {threads}
local threads = {{}}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
local tokens = nil
counter = 0
function init(args)
  if token_file ~= "" then
    tokens = {{}}
    for line in io.lines(token_file) do tokens[#tokens + 1] = line end
  end
end
function request()
  counter = counter + 1
  local headers = {{["Content-Type"] = "application/json"}}
  if tokens then
    local index = id + 1 + (counter - 1) * thread_count
    headers["Authorization"] = "Bearer " .. (tokens[index] or "used-up")
  elseif fixed_token ~= "" then
    headers["Authorization"] = "Bearer " .. fixed_token
  end
  local body = nil
  if body_kind == "sign_in" then
    body = '{{"email":"' .. email .. '","password":"' .. password .. '"}}'
  elseif body_kind == "sign_up" then
    local address = "peer-" .. tag .. "-" .. id .. "-" .. counter .. "@example.com"
    body = '{{"email":"' .. address .. '","password":"' .. password .. '","name":"Peer"}}'
  end
  return wrk.format(method, path, headers, body)
end
last_status = 0
function response(status, headers, body)
  if status >= 400 then last_status = status end
end
function done(summary, latency, requests)
  local e = summary.errors
  local made, status = 0, 0
  for _, thread in ipairs(threads) do
    made = math.max(made, thread:get("counter"))
    status = math.max(status, thread:get("last_status"))
  end
  io.write(string.format(
    '{{"requests":%d,"duration_us":%d,"errors":%d,"status_errors":%d,"p50_us":%d,"used":%d,'
    .. '"failed_status":%d}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), made * thread_count, status))
end
"""


@dataclass(frozen=True)
class Rate:
    per_second: float
    requests: int
    errors: int
    p50_ms: float
    cpu_ms: float  # the server process's CPU time per request


@dataclass(frozen=True)
class PeerRow:
    label: str
    connections: int
    ours: Rate
    theirs: Rate

    @property
    def ratio(self) -> float:
        return self.ours.per_second / self.theirs.per_second if self.theirs.per_second else 0.0

    @property
    def cpu_ratio(self) -> float:
        """Requests per CPU-second of the server process, ours over theirs."""
        return self.theirs.cpu_ms / self.ours.cpu_ms if self.ours.cpu_ms else 0.0


@dataclass
class PeerRun:
    skipped: str = ""  # why the comparison did not run
    cpu: int | None = None
    client_cpus: str = ""
    seconds: float = 0.0
    rounds: int = 0
    worker_class: str = ""
    hasher: str = ""
    rows: list[PeerRow] = field(default_factory=list)
    memory: list["Memory"] = field(default_factory=list)
    hash_cpu_ms: float = 0.0  # one hash with the first of PASSWORD_HASHERS, this process
    profile: Profile | None = None


def _missing() -> str:
    if not shutil.which("node"):
        return "node is not installed"
    if not (PEER_DIR / "node_modules" / "better-auth").is_dir():
        return "better-auth is not installed (make better-auth-deps needs npm)"
    if not shutil.which("wrk"):
        return "wrk is not installed (make bench installs Debian's package when root)"
    if not shutil.which("taskset"):
        return "taskset is not installed"
    return ""


def _cores() -> tuple[int, str]:
    """The core both servers get, and the cores left for wrk (the same one on a 1-core box)."""
    cpus = sorted(os.sched_getaffinity(0))
    server = cpus[-1]
    client = [c for c in cpus if c != server] or [server]
    return server, ",".join(map(str, client))


def _node_database_url(name: str) -> str:
    db = settings.DATABASES["default"]
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or "127.0.0.1"
    port = db.get("PORT") or 5432
    if host.startswith("/"):
        # A socket directory: node-postgres takes it from the query string.
        return f"postgres://{auth}@localhost:{port}/{name}?host={quote(host, safe='/')}"
    return f"postgres://{auth}@{quote(host, safe='')}:{port}/{name}"


@contextmanager
def _scratch_database(name: str):
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with maintenance_connection() as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with maintenance_connection() as conn:
            conn.execute(drop)


@contextmanager
def _better_auth(database: str, cpu: int):
    """better-auth's server on `cpu`; yield its base URL once it listens."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        ["taskset", "-c", str(cpu), "node", "server.mjs"],  # noqa: S607
        cwd=PEER_DIR,
        env={**os.environ, "DATABASE_URL": _node_database_url(database), "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline()
        if not line.startswith("listening"):
            raise RuntimeError(f"better-auth did not start (exit code {process.wait(10)})")
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _post(url: str, body: dict) -> dict:
    import urllib.request

    request = urllib.request.Request(  # noqa: S310
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.load(response)


# Three users on each server, so that one operation's sessions never change another's
# work: one signs in, one is read (session check, list sessions), one signs out.
USERS = {kind: f"peer-{kind}@example.com" for kind in ("sign-in", "reader", "sign-out")}


def _session_tokens(sign_out_tokens: int) -> dict[str, list[str]]:
    return {
        "session": [secrets.token_urlsafe(32)],
        "sessions": [secrets.token_urlsafe(32) for _ in range(LISTED_SESSIONS - 1)],
        "sign_out": [secrets.token_urlsafe(32) for _ in range(sign_out_tokens)],
    }


def _owner(kind: str) -> str:
    return "sign-out" if kind == "sign_out" else "reader"


def _better_auth_tokens(base: str, database: str, sign_out_tokens: int) -> dict:
    """The users signed up over HTTP; their sessions inserted as better-auth stores them."""
    ids = {
        who: _post(
            f"{base}/api/auth/sign-up/email", {"email": email, "password": PASSWORD, "name": "Peer"}
        )["user"]["id"]
        for who, email in USERS.items()
    }
    tokens = _session_tokens(sign_out_tokens)
    # In bulk: signing in 40,000 times first would take minutes. better-auth keeps its
    # tokens as they are, so the rows are all a sign-in would leave.
    now = timezone.now()
    with connect(database) as conn, conn.cursor() as cursor:
        cursor.executemany(
            'INSERT INTO "session" (id, token, "userId", "expiresAt", "createdAt", "updatedAt")'
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (secrets.token_hex(16), token, ids[_owner(kind)], now + timedelta(days=7), now, now)
                for kind, kind_tokens in tokens.items()
                for token in kind_tokens
            ],
        )
    # The session check's token reads as the list's first session.
    tokens["sessions"] = tokens["session"] + tokens["sessions"]
    return {"email": USERS["sign-in"], **tokens}


def _sv_sdk_tokens(sign_out_tokens: int) -> dict:
    users = {who: user_onboard(email=email, password=PASSWORD) for who, email in USERS.items()}
    tokens = _session_tokens(sign_out_tokens)
    # As session_create stores them (hashed), in bulk for the same reason as the peer's.
    now = timezone.now()
    Session.objects.bulk_create(
        [
            Session(
                user=users[_owner(kind)],
                token_hash=token_hash(token),
                expires_at=now + timedelta(seconds=settings.SV_SESSION_TTL),
                amr=["pwd"],
            )
            for kind, kind_tokens in tokens.items()
            for token in kind_tokens
        ],
        batch_size=5000,
    )
    tokens["sessions"] = tokens["session"] + tokens["sessions"]
    return {"email": USERS["sign-in"], **tokens}


@dataclass
class Server:
    name: str
    base: str
    pid: int | None  # the process that does the work (gunicorn's worker, node)
    tokens: dict


def _settle(pid: int | None, *, quiet: float = 0.3, limit: float = 60.0) -> None:
    """Wait until `pid` has used no CPU for `quiet` seconds: a run's requests still queued
    when wrk stops (slow sign-ins) must not be counted against the next run."""
    deadline = time.monotonic() + limit
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now == before:
            return
        before = now


def _wrk(
    target: Server, kind: str, connections: int, seconds: float, work: Path, client: str
) -> Rate:
    server, base, tokens, pid = target.name, target.base, target.tokens, target.pid
    method, path, body = REQUESTS[server][kind]
    threads = min(2, connections)
    token_file = ""
    token = ""
    if kind == "sign_out":
        token_file = str(work / f"{server}-sign-out")
        # Each round takes the tokens no earlier round used.
        Path(token_file).write_text("\n".join(tokens["sign_out"]) + "\n")
    elif kind in ("session", "sessions"):
        token = tokens[kind][0]
    script = work / f"{server}-{kind}.lua"
    script.write_text(
        _WRK_SCRIPT.format(
            method=method,
            path=path,
            body=body or "",
            tag=secrets.token_hex(4),
            email=tokens["email"],
            password=PASSWORD,
            token_file=token_file,
            token=token,
            threads=threads,
        )
    )
    _settle(pid)
    cpu_before = cpu_seconds(pid)
    out = subprocess.run(  # noqa: S603
        [  # noqa: S607
            "taskset",
            "-c",
            client,
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    # Read as wrk stops: the requests still in flight then are a few of hundreds.
    cpu = cpu_seconds(pid) - cpu_before
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    if kind == "sign_out":
        # The next round starts past every token this one handed out.
        tokens["sign_out"] = tokens["sign_out"][summary["used"] :]
    errors = summary["errors"] + summary["status_errors"]
    if summary["status_errors"]:
        print(
            f"{server} {kind}: {summary['status_errors']} answers with an error status,"
            f" such as {summary['failed_status']}",
            file=sys.stderr,
        )
    seconds_taken = summary["duration_us"] / 1e6
    return Rate(
        per_second=(summary["requests"] - errors) / seconds_taken,
        requests=summary["requests"],
        errors=errors,
        p50_ms=summary["p50_us"] / 1000,
        cpu_ms=cpu * 1000 / summary["requests"] if summary["requests"] else 0.0,
    )


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(kib) / 1024


def _gunicorn_worker(port: int) -> int | None:
    """The pid of the one gunicorn worker serving `port` (the child of its master)."""
    serving = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "gunicorn" in cmdline and f"127.0.0.1:{port}" in cmdline:
            serving[int(entry.name)] = parent_pid(int(entry.name))
    workers = [pid for pid, parent in serving.items() if parent in serving]
    return workers[0] if workers else None


class PeakMemory:
    """Sample the resident memory of some processes while a load runs; keep each one's peak."""

    def __init__(self, pids: dict[str, int | None], every: float = 0.02):
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.every = every
        self.peaks = dict.fromkeys(self.pids, 0.0)
        self.idle = {name: _rss_mib(pid) for name, pid in self.pids.items()}
        self._stop = False

    def _sample(self) -> None:
        while not self._stop:
            for name, pid in self.pids.items():
                try:
                    self.peaks[name] = max(self.peaks[name], _rss_mib(pid))
                except (OSError, StopIteration):
                    pass
            time.sleep(self.every)

    def __enter__(self):
        import threading

        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join()


@dataclass(frozen=True)
class Memory:
    server: str
    idle_mib: float
    peak_mib: float


def _hasher() -> str:
    from django.contrib.auth.hashers import get_hasher, make_password

    hasher = get_hasher()
    decoded = hasher.decode(make_password(PASSWORD, hasher=hasher))
    if "memory_cost" not in decoded:
        return hasher.algorithm
    return (
        f"{decoded.get('variety', hasher.algorithm)} ({decoded['memory_cost'] / 1024:g} MiB,"
        f" t={decoded['time_cost']}, p={decoded['parallelism']})"
    )


def peer_run(*, seconds: float = 4.0, rounds: int = ROUNDS) -> PeerRun:
    """Every operation `rounds` times on each server, interleaved; the median rate of each."""
    missing = _missing()
    if missing:
        return PeerRun(skipped=missing)
    cpu, client = _cores()
    environment = {
        **os.environ,
        **LOAD_ENVIRONMENT,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
    }
    our_tokens = _sv_sdk_tokens(SIGN_OUT_TOKENS)
    results: dict[tuple[str, str], list[Rate]] = {}
    memory: list[Memory] = []
    peer_database = f"{settings.DATABASES['default']['NAME']}_peer"
    with (
        _scratch_database(peer_database) as database,
        _better_auth(database, cpu) as (theirs, node_pid),
        gunicorn(environment, workers=1, cpu=cpu) as ours,
        tempfile.TemporaryDirectory() as scratch,
    ):
        work = Path(scratch)
        servers = [
            Server("sv_sdk", ours, _gunicorn_worker(int(ours.rsplit(":", 1)[1])), our_tokens),
            Server(
                "better-auth",
                theirs,
                node_pid,
                _better_auth_tokens(theirs, database, SIGN_OUT_TOKENS),
            ),
        ]
        for server in servers:  # warm each server's code paths and pool
            for kind in ("session", "sign_in"):
                _wrk(server, kind, 4, 1.0, work, client)
        total = rounds * len(OPERATIONS) * len(servers)
        done = 0
        for round_ in range(rounds):
            for _label, connections, kind in OPERATIONS:
                for server in servers:
                    with PeakMemory({server.name: server.pid}) as watch:
                        rate = _wrk(server, kind, connections, seconds, work, client)
                    results.setdefault((server.name, kind), []).append(rate)
                    if kind == "sign_in" and round_ == 0 and server.name in watch.peaks:
                        memory.append(
                            Memory(server.name, watch.idle[server.name], watch.peaks[server.name])
                        )
                    done += 1
                    progress.advance(done, total, "runs")

    # The bounds, when a target is missed: one hash on its own, and where a session
    # check's time goes (in this process, with the same settings as the server).
    hash_cpu_ms = hash_cost().cpu_p50_ms
    profile = profile_request(
        "session check",
        REQUESTS["sv_sdk"]["session"][1],
        {"Authorization": f"Bearer {our_tokens['session'][0]}"},
    )

    def combined(server: str, kind: str) -> Rate:
        runs = results[server, kind]
        return Rate(
            per_second=median(r.per_second for r in runs),
            requests=sum(r.requests for r in runs),
            errors=sum(r.errors for r in runs),
            p50_ms=median(r.p50_ms for r in runs),
            cpu_ms=median(r.cpu_ms for r in runs),
        )

    return PeerRun(
        cpu=cpu,
        client_cpus=client,
        seconds=seconds,
        rounds=rounds,
        worker_class=worker_settings(),
        hasher=_hasher(),
        rows=[
            PeerRow(label, connections, combined("sv_sdk", kind), combined("better-auth", kind))
            for label, connections, kind in OPERATIONS
        ],
        memory=memory,
        hash_cpu_ms=hash_cpu_ms,
        profile=profile,
    )


# Issue 20's targets: sv_sdk's req/s over better-auth's, each on one core.
TARGETS = {"sign-in": 3.0, "sign-up": 3.0, "session check (bearer)": 2.0}


def _verdicts(run: PeerRun) -> list[str]:
    """Each target met or missed; a miss says by how much and what bounds it."""
    lines = []
    for row in run.rows:
        goal = TARGETS.get(row.label)
        if goal is None:
            continue
        met = row.ratio >= goal and row.ours.errors == 0
        line = (
            f"{row.label}: {row.ratio:.2f}x better-auth's rate, {row.cpu_ratio:.2f}x per CPU-second"
            f" (target >= {goal:g}x, {row.ours.errors} errors): {'met' if met else 'missed'}"
        )
        if not met:
            shortfall = Target(
                row.label, "", "", "", met, value=row.ratio, goal=goal, higher_is_better=True
            ).shortfall
            line += f", {shortfall}" if shortfall else ""
            if row.label in ("sign-in", "sign-up") and run.hash_cpu_ms:
                ceiling = row.theirs.cpu_ms / run.hash_cpu_ms
                line += (
                    f". Bound: one {run.hasher} hash costs {run.hash_cpu_ms:.0f} ms of CPU of the"
                    f" {row.ours.cpu_ms:.0f} ms a {row.label} takes here; better-auth's whole"
                    f" {row.label} takes {row.theirs.cpu_ms:.0f} ms, so with the rest free the"
                    f" ratio per CPU-second could reach {ceiling:.1f}x at most"
                )
            elif run.profile:
                line += (
                    ". Bound: the work of the Python stack per request, with one query; where"
                    " its time goes is profiled below"
                )
        lines.append(line)
    return lines


HEADER = (
    "operation",
    "connections",
    "sv_sdk",
    "better-auth",
    "ratio",
    "server CPU per request (ours / theirs)",
    "ratio per CPU-second",
    "errors (ours/theirs)",
)


def _rows(run: PeerRun) -> list[tuple[str, ...]]:
    return [
        (
            row.label,
            str(row.connections),
            f"{row.ours.per_second:,.1f} req/s",
            f"{row.theirs.per_second:,.1f} req/s",
            f"{row.ratio:.2f}",
            f"{row.ours.cpu_ms:.2f} / {row.theirs.cpu_ms:.2f} ms",
            f"{row.cpu_ratio:.2f}",
            f"{row.ours.errors}/{row.theirs.errors}",
        )
        for row in run.rows
    ]


def _notes(run: PeerRun) -> list[str]:
    lines = [
        f"Both servers pinned to core {run.cpu}, one process each: sv_sdk under gunicorn with one"
        f" {run.worker_class} worker, better-auth {PEER_VERSION} in one Node process (its scrypt"
        f" runs in libuv's pool, on the same core). wrk on core(s) {run.client_cpus}, keep-alive,"
        f" {run.rounds} interleaved rounds of {run.seconds:g} s per operation; the median rate.",
        f"sv_sdk hashes with {run.hasher}; better-auth with scrypt (N 16384, r 16, p 1: 32 MiB).",
        "Sign-out and list sessions use sessions made in bulk beforehand (each sign-out ends"
        " one); the session check and list sessions read one user's sessions"
        f" ({LISTED_SESSIONS} of them to list).",
    ]
    if run.profile:
        lines += profile_lines(run.profile)
    lines += [
        f"Memory at 4 concurrent sign-ins, {m.server}: {m.peak_mib:.0f} MiB resident at peak"
        f" ({m.idle_mib:.0f} MiB before)"
        for m in run.memory
    ]
    return lines


def text(run: PeerRun) -> str:
    if run.skipped:
        return f"sv_sdk vs better-auth: not measured: {run.skipped}"
    return "\n".join(
        [
            "sv_sdk vs better-auth",
            *text_table(HEADER, _rows(run)),
            "",
            *_verdicts(run),
            "",
            *_notes(run),
        ]
    )


def markdown(run: PeerRun) -> str:
    if run.skipped:
        return f"## sv_sdk vs better-auth\n\nNot measured in this run: {run.skipped}.\n"
    return "\n".join(
        [
            "## sv_sdk vs better-auth",
            "",
            *markdown_table(HEADER, _rows(run)),
            "",
            "Targets (issue 20):",
            "",
            *(f"- {line}" for line in _verdicts(run)),
            "",
            *(f"- {line}" for line in _notes(run)),
            "",
        ]
    )
