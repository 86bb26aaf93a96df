"""Restart PostgreSQL under load: fail fast with 503s, recover without restarting the app,
and lose nothing that was acknowledged."""

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

from .servers import Postgres, app_environment, gunicorn, manage

PASSWORD = "correct horse battery staple"


@dataclass
class Outcome:
    started: float
    status: int
    seconds: float
    code: str = ""


@dataclass
class RestartReport:
    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    crash_at: float = 0.0
    restart_at: float = 0.0
    missing: set[str] = field(default_factory=set)
    invariants_ok: bool = False

    def phase(self, outcome: Outcome) -> str:
        if outcome.started < self.crash_at:
            return "before"
        if outcome.started < self.restart_at:
            return "outage"
        return "after"

    def summary(self) -> dict:
        by_phase: dict[str, Counter] = {
            "before": Counter(),
            "outage": Counter(),
            "after": Counter(),
        }
        slowest: dict[str, float] = {"before": 0.0, "outage": 0.0, "after": 0.0}
        for o in self.outcomes:
            p = self.phase(o)
            by_phase[p][o.status] += 1
            slowest[p] = max(slowest[p], o.seconds)
        after_ok = [
            o.started - self.restart_at
            for o in self.outcomes
            if self.phase(o) == "after" and o.status < 300
        ]
        return {
            "statuses": {p: dict(sorted(c.items())) for p, c in by_phase.items()},
            "slowest_seconds": {p: round(s, 3) for p, s in slowest.items()},
            "first_success_after_restart_seconds": round(min(after_ok), 3) if after_ok else None,
            "server_errors": sum(1 for o in self.outcomes if o.status >= 500 and o.status != 503),
            "acknowledged_sign_ups": len(self.acknowledged),
            "acknowledged_but_missing": len(self.missing),
            "invariants_ok": self.invariants_ok,
        }


def _request(method: str, url: str, body: dict | None = None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except OSError:
        return 0, None


def _load(base: str, report: RestartReport, stop: threading.Event, worker: int) -> None:
    """Mostly session checks and profile writes, with a sign-up (Argon2, costly) now and then."""
    n = 0
    token = None
    while not stop.is_set():
        n += 1
        started = time.monotonic()
        if token is None or n % 10 == 0:
            email = f"load-{worker}-{n}@example.com"
            status, body = _request(
                "POST", f"{base}/api/v1/auth/sign-up", {"email": email, "password": PASSWORD}
            )
            if status == 201:
                report.acknowledged.add(email)
                token = body["session"]["token"]
        elif n % 2:
            status, body = _request("PATCH", f"{base}/api/v1/auth/me", {"name": f"n{n}"}, token)
        else:
            status, body = _request("GET", f"{base}/api/v1/auth/session", token=token)
        code = body.get("code", "") if isinstance(body, dict) else ""
        report.outcomes.append(Outcome(started, status, time.monotonic() - started, code))


def run(*, before: float = 4.0, outage: float = 4.0, after: float = 8.0, workers: int = 6):
    """Crash and restart the database under load; return the report."""
    postgres = Postgres()
    report = RestartReport()
    try:
        manage(postgres.url, "migrate", "--no-input")
        with gunicorn(app_environment(postgres.url)) as base:
            stop = threading.Event()
            threads = [
                threading.Thread(target=_load, args=(base, report, stop, w)) for w in range(workers)
            ]
            for thread in threads:
                thread.start()
            time.sleep(before)
            report.crash_at = time.monotonic()
            postgres.crash()
            time.sleep(outage)
            postgres.start()
            report.restart_at = time.monotonic()
            time.sleep(after)
            stop.set()
            for thread in threads:
                thread.join()
        with postgres.connect() as conn:
            present = {row[0] for row in conn.execute('SELECT email FROM "auth"."users"')}
        report.missing = report.acknowledged - present
        try:
            manage(postgres.url, "check_invariants")
            report.invariants_ok = True
        except subprocess.CalledProcessError:
            report.invariants_ok = False
    finally:
        postgres.close()
    return report
