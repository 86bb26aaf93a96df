"""Where a call's CPU time goes: a request to the app in-process, or any callable, under
cProfile, by area."""

import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from statistics import median

# Areas by the file a function lives in (a built-in function: its caller's); the first that
# matches wins.
AREAS = [
    (
        "DRF serializers (output)",
        ("rest_framework/serializers", "rest_framework/fields", "copy.py"),
    ),
    ("JSON rendering", ("json/encoder", "rest_framework/renderers", "rest_framework/utils/json")),
    (
        "cursor pagination and its links (signing, URL quoting)",
        (
            "rest_framework/pagination",
            "sv_sdk/api/pagination",
            "rest_framework/utils/urls",
            "signing",
            "urllib/parse",
        ),
    ),
    ("DRF view, request, auth", ("rest_framework",)),
    (
        "list rows into the API's shape (fold, datetimes)",
        ("platform_app/api/", "permissions_app/selectors", "sv_sdk/api/serializers"),
    ),
    ("psycopg (the query, its round trip)", ("psycopg",)),
    ("database layer (Django's, sv_sdk/db)", ("django/db", "sv_sdk/db/")),
    ("URL resolving", ("django/urls",)),
    ("Django and whitenoise middleware", ("django/middleware", "django/contrib", "whitenoise")),
    ("Django handler, request and response", ("django/core/handlers", "django/http")),
    ("project middleware (request id, logs, metrics)", ("/sv_sdk/", "audit_app", "prometheus")),
    ("session lookup and authentication", ("auth_app",)),
    ("rest of Django", ("django",)),
]
OTHER = "built-ins and the standard library"


@dataclass(frozen=True)
class Profile:
    label: str
    calls: int
    cpu_ms: float  # per call, without the profiler
    shares: list[tuple[str, float]]  # (area, fraction of the profiled time), largest first


def _environ(method: str, path: str, headers: dict[str, str]) -> dict:
    path, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
    }
    environ.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    return environ


def _area(filename: str, areas=AREAS) -> str:
    for area, markers in areas:
        if any(marker in filename for marker in markers):
            return area
    return OTHER


def profile_callable(
    label: str, call: Callable[[], object], *, calls: int = 1000, warmup: int = 100, areas=AREAS
) -> Profile:
    """Call `call` `calls` times: CPU per call, then `calls` more under cProfile, by area.

    `areas` is a list like AREAS: (area, markers in the file name), the first that matches wins.
    """
    for _ in range(warmup):
        call()
    started = time.process_time()
    for _ in range(calls):
        call()
    cpu_ms = (time.process_time() - started) * 1000 / calls
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    own_time: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, own, _cum, callers) in pstats.Stats(
        profiler
    ).stats.items():
        # A built-in function (isinstance, getattr, str.join) counts in its caller's area.
        spent = (
            [(caller[0], tt) for caller, (_c, _n, tt, _ct) in callers.items()]
            if filename == "~"
            else [(filename, own)]
        )
        for where, seconds in spent:
            area = _area(where, areas)
            own_time[area] = own_time.get(area, 0.0) + seconds
    total = sum(own_time.values()) or 1.0
    shares = sorted(((a, t / total) for a, t in own_time.items()), key=lambda x: -x[1])
    return Profile(label, calls, cpu_ms, shares)


def _get(path: str, headers: dict[str, str]) -> Callable[[], None]:
    """One GET `path` through the WSGI app, in this process; anything but a 200 is an error."""
    from sv_sdk.wsgi import application

    def call() -> None:
        statuses = []
        body = application(_environ("GET", path, headers), lambda s, h, e=None: statuses.append(s))
        b"".join(body)
        if not statuses[0].startswith("200"):
            raise RuntimeError(f"GET {path} answered {statuses[0]} while profiling")

    return call


def profile_request(
    label: str, path: str, headers: dict[str, str], *, calls: int = 1000, warmup: int = 100
) -> Profile:
    """Call the WSGI app `calls` times for GET `path`: CPU per call, then a profile by area."""
    return profile_callable(label, _get(path, headers), calls=calls, warmup=warmup)


def profile_requests(
    requests: list[tuple[str, str, dict[str, str]]], *, rounds: int = 5, calls: int = 200
) -> list[Profile]:
    """(label, path, headers) each profiled as profile_request does, but with the CPU per
    call taken as the median of `rounds` interleaved runs of `calls`: a burst of load from
    elsewhere then falls on every request alike, and their ratio holds."""
    profiles = [
        profile_request(label, path, headers, calls=calls) for label, path, headers in requests
    ]
    gets = [(label, _get(path, headers)) for label, path, headers in requests]
    cpu: dict[str, list[float]] = {label: [] for label, _ in gets}
    for _ in range(rounds):
        for label, call in gets:
            started = time.process_time()
            for _ in range(calls):
                call()
            cpu[label].append((time.process_time() - started) * 1000 / calls)
    return [
        replace(profile, calls=rounds * calls, cpu_ms=median(cpu[profile.label]))
        for profile in profiles
    ]


def shares_text(profile: Profile, top: int = 6) -> str:
    """The `top` largest areas of `profile`, with their shares of the profiled time."""
    return ", ".join(f"{area} {share:.0%}" for area, share in profile.shares[:top])


def lines(profile: Profile, top: int = 6) -> list[str]:
    parts = shares_text(profile, top)
    return [
        f"{profile.label}: {profile.cpu_ms:.2f} ms of CPU per request in-process (no HTTP server,"
        f" {profile.calls} calls); by area under cProfile: {parts}"
    ]
