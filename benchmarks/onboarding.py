"""Time the user_onboard flow without password hashing, and one hash on its own."""

import time
from dataclasses import dataclass
from statistics import fmean, median, quantiles

from django.contrib.auth.hashers import get_hasher, make_password

from auth_app.models import User
from platform_app.flows import user_onboard

from . import progress

_NS_PER_MS = 1_000_000


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
class OnboardingRun:
    iterations: int
    warmup: int
    latency: Latency
    per_second: float
    users_before: int
    users_after: int


def onboarding_run(*, iterations: int, warmup: int) -> OnboardingRun:
    """Onboard `warmup` users untimed, then `iterations` users one call at a time.

    password=None stores an unusable password, so no hash is computed: the
    figures are the flow's database work, not Argon2 (see hash_cost).
    """
    for i in range(warmup):
        user_onboard(email=f"bench-warmup-{i}@example.com", password=None)
    users_before = User.objects.count()
    samples: list[int] = []
    started = time.perf_counter_ns()
    for i in range(iterations):
        t0 = time.perf_counter_ns()
        # Each call is its own durable transaction, committed before the next starts.
        user_onboard(email=f"bench-{i}@example.com", password=None)
        samples.append(time.perf_counter_ns() - t0)
        if (i + 1) % 100 == 0 or i + 1 == iterations:
            progress.advance(i + 1, iterations, "calls")
    elapsed_ns = time.perf_counter_ns() - started
    return OnboardingRun(
        iterations=iterations,
        warmup=warmup,
        latency=latency(samples),
        per_second=iterations / (elapsed_ns / 1e9),
        users_before=users_before,
        users_after=User.objects.count(),
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
