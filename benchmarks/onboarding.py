"""Time the user_onboard flow without password hashing, and one hash on its own."""

import time
from dataclasses import dataclass
from statistics import fmean, median, quantiles

from django.contrib.auth.hashers import get_hasher, make_password
from django.db import connection

from auth_app.models import User
from platform_app.flows import user_onboard

from . import progress
from .profile import Profile, profile_callable, shares_text

_NS_PER_MS = 1_000_000
# Calls profiled after the timed ones (and as many untimed before them): where the CPU goes.
PROFILED_CALLS = 300

# Areas of the flow's CPU time, by the file a function lives in; the first that matches wins.
ONBOARD_AREAS = [
    ("psycopg (quoting values, sending, reading results)", ("psycopg",)),
    ("Django ORM (model instances, field preparation)", ("django/db",)),
    (
        "email outbox (templates, secret links, encryption)",
        ("email_app", "django/template", "cryptography"),
    ),
    ("audit rows (metadata, MACs)", ("audit_app",)),
    ("accounts (address, unusable password, token)", ("auth_app", "idna", "django/contrib/auth")),
    ("permissions (role grant)", ("permissions_app",)),
    ("batching and jobs (sv_sdk, procrastinate)", ("/sv_sdk/", "procrastinate")),
    ("rest of Django", ("django",)),
]


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float


def latency(samples_ns: list[int]) -> Latency:
    cuts = quantiles(samples_ns, n=100, method="inclusive")
    return Latency(
        p50_ms=cuts[49] / _NS_PER_MS,
        p90_ms=cuts[89] / _NS_PER_MS,
        p99_ms=cuts[98] / _NS_PER_MS,
        mean_ms=fmean(samples_ns) / _NS_PER_MS,
    )


@dataclass(frozen=True)
class TimeSplit:
    """Where one call's time goes, from the timed calls and a profile of more calls."""

    cpu_p50_ms: float  # Python CPU of the process (time.process_time), median per call
    wait_p50_ms: float  # median per call of wall minus CPU: waiting, mostly on PostgreSQL
    queries: float  # queries sent per call (each one round trip), BEGIN and COMMIT aside
    profile: Profile  # the CPU by area, under cProfile

    def text(self) -> str:
        return (
            f"per call (p50): {self.cpu_p50_ms:.2f} ms of Python CPU,"
            f" {self.wait_p50_ms:.2f} ms waiting (wall minus CPU: PostgreSQL, the round trips"
            f" of {self.queries:g} queries plus BEGIN and COMMIT); the CPU under cProfile"
            f" ({self.profile.calls} calls): {shares_text(self.profile, 4)}"
        )


@dataclass(frozen=True)
class OnboardingRun:
    iterations: int
    warmup: int
    latency: Latency
    per_second: float
    users_before: int
    users_after: int
    split: TimeSplit


def onboarding_run(*, iterations: int, warmup: int) -> OnboardingRun:
    """Onboard `warmup` users untimed, then `iterations` users one call at a time.

    password=None stores an unusable password, so no hash is computed: the
    figures are the flow's database work, not Argon2 (see hash_cost).
    """
    for i in range(warmup):
        user_onboard(email=f"bench-warmup-{i}@example.com", password=None)
    users_before = User.objects.count()
    samples: list[int] = []
    cpu: list[int] = []
    waits: list[int] = []
    started = time.perf_counter_ns()
    for i in range(iterations):
        cpu0, t0 = time.process_time_ns(), time.perf_counter_ns()
        # Each call is its own durable transaction, committed before the next starts.
        user_onboard(email=f"bench-{i}@example.com", password=None)
        wall = time.perf_counter_ns() - t0
        samples.append(wall)
        cpu.append(time.process_time_ns() - cpu0)
        waits.append(wall - cpu[-1])
        if (i + 1) % 100 == 0 or i + 1 == iterations:
            progress.advance(i + 1, iterations, "calls")
    elapsed_ns = time.perf_counter_ns() - started
    users_after = User.objects.count()
    return OnboardingRun(
        iterations=iterations,
        warmup=warmup,
        latency=latency(samples),
        per_second=iterations / (elapsed_ns / 1e9),
        users_before=users_before,
        users_after=users_after,
        split=TimeSplit(
            cpu_p50_ms=median(cpu) / _NS_PER_MS,
            wait_p50_ms=median(waits) / _NS_PER_MS,
            queries=_queries_per_call(),
            profile=_profile(),
        ),
    )


def _queries_per_call(calls: int = 20) -> float:
    """Queries user_onboard sends per call, as Django's execute wrappers see them."""
    sent = []

    def count(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        for i in range(calls):
            user_onboard(email=f"bench-counted-{i}@example.com", password=None)
    return len(sent) / calls


def _profile() -> Profile:
    numbers = iter(range(10**9))

    def call() -> None:
        user_onboard(email=f"bench-profiled-{next(numbers)}@example.com", password=None)

    return profile_callable(
        "user_onboard", call, calls=PROFILED_CALLS, warmup=0, areas=ONBOARD_AREAS
    )


@dataclass(frozen=True)
class HashCost:
    hasher: str
    wall_p50_ms: float
    cpu_p50_ms: float

    @property
    def per_core_per_second(self) -> float:
        # CPU time, not wall time: Argon2 may spread its lanes over several threads.
        return 1000 / self.cpu_p50_ms


def hash_cost(*, rounds: int = 7) -> HashCost:
    """Time make_password with the first of PASSWORD_HASHERS, as sign-up and sign-in pay it."""
    hasher = get_hasher()
    params = ", ".join(
        f"{name} {getattr(hasher, name)}"
        for name in ("time_cost", "memory_cost", "parallelism", "iterations")
        if hasattr(hasher, name)
    )
    make_password("warm-up password")
    wall: list[int] = []
    cpu: list[int] = []
    for _ in range(rounds):
        wall0, cpu0 = time.perf_counter_ns(), time.process_time_ns()
        make_password("correct horse battery staple")
        wall.append(time.perf_counter_ns() - wall0)
        cpu.append(time.process_time_ns() - cpu0)
    return HashCost(
        hasher=f"{hasher.algorithm} ({params})" if params else hasher.algorithm,
        wall_p50_ms=median(wall) / _NS_PER_MS,
        cpu_p50_ms=median(cpu) / _NS_PER_MS,
    )
