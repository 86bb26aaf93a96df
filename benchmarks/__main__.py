"""Run the benchmarks against a throwaway database; print the results and write the docs page."""

import argparse
import os
import sys
import time
from datetime import UTC, datetime


def _at_least_100(value: str) -> int:
    number = int(value)
    if number < 100:
        raise argparse.ArgumentTypeError("need at least 100 calls for a p99")
    return number


SECTIONS = ["http", "console", "partitions", "growth"]


def section(name: str, *, audit_rows: int, http_seconds: float) -> None:
    """One section alone, in the bench database: fill what it needs, measure, print."""
    from django.conf import settings
    from django.core.management import call_command

    from . import console as console_bench
    from . import growth as growth_bench
    from . import http as http_bench
    from . import partitions as partitions_bench
    from . import permissions as permissions_bench
    from . import targets as targets_bench
    from .audit import fill

    if name == "http":
        permissions_run = permissions_bench.permissions_run()
        http_run = http_bench.http_run(seconds=http_seconds)
        goals = targets_bench.section_targets(permissions_run, http_run)
        print(targets_bench.text(goals, http_run))
        print("\n" + permissions_bench.text(permissions_run))
        return
    if name == "console":
        # The admin's templates need the static manifest (DEBUG is off, as in production).
        call_command("collectstatic", interactive=False, verbosity=0)
        console_bench.seed_users(console_bench.USERS)
    fill(audit_rows)
    if name == "console":
        print(console_bench.text(console_bench.console_run()))
    elif name == "partitions":
        print(partitions_bench.text(partitions_bench.partitions_run()))
    else:
        run = growth_bench.growth_run(rows=audit_rows)
        print(growth_bench.text(run))
        print(f"chart: {growth_bench.chart(run, settings.BASE_DIR / 'docs')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--onboard-iterations",
        type=_at_least_100,
        default=1000,
        help="timed user_onboard calls (default 1000, at least 100)",
    )
    parser.add_argument(
        "--warmup", type=int, default=50, help="untimed user_onboard calls first (default 50)"
    )
    parser.add_argument(
        "--email-sends",
        type=int,
        default=500,
        help="emails delivered per worker-count run (default 500)",
    )
    parser.add_argument(
        "--audit-rows",
        type=int,
        default=10_000_000,
        help="audit rows for the query benchmark (default 10,000,000, the design's size)",
    )
    parser.add_argument(
        "--audit-inserts",
        type=int,
        default=2000,
        help="audit inserts per writer process (default 2000)",
    )
    parser.add_argument(
        "--seed-samples",
        type=_at_least_100,
        default=300,
        help="timed calls per design for each row of the seed table (default 300)",
    )
    parser.add_argument(
        "--http-seconds",
        type=float,
        default=4.0,
        help="seconds of load per endpoint and round in the HTTP benchmark (default 4)",
    )
    parser.add_argument(
        "--section",
        choices=SECTIONS,
        help="run one section alone on a fresh bench database and print it, writing no docs"
        " page: http on the permissions section's 100,000 users (whose figures and targets it"
        " prints too); console on 100,000 users and --audit-rows audit rows; partitions and"
        " growth on --audit-rows audit rows (growth also writes its chart)",
    )
    args = parser.parse_args(argv)

    # Forced, not defaulted: a settings module from the shell would point at the developer's data.
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django

    django.setup()
    from django.conf import settings

    from . import audit as audit_bench
    from . import console as console_bench
    from . import email as email_bench
    from . import growth as growth_bench
    from . import http as http_bench
    from . import partitions as partitions_bench
    from . import peer as peer_bench
    from . import permissions as permissions_bench
    from . import pooler as pooler_bench
    from . import progress, report, seed
    from . import replicas as replicas_bench
    from . import targets as targets_bench
    from .chart import seed_chart
    from .database import bench_database
    from .onboarding import hash_cost, onboarding_run

    if args.section:
        with bench_database():
            section(args.section, audit_rows=args.audit_rows, http_seconds=args.http_seconds)
        return 0

    when = datetime.now(UTC)
    started = time.monotonic()
    progress.start()
    with bench_database():
        with progress.stage("user_onboard latency"):
            run = onboarding_run(iterations=args.onboard_iterations, warmup=args.warmup)
        with progress.stage("password hash cost"):
            cost = hash_cost()
        # Early: the replica copies the whole server, before the big sections fill it.
        with progress.stage("read replica"):
            replicas_run = replicas_bench.replicas_run()
        with progress.stage("email delivery"):
            email_runs = email_bench.email_runs(sends=args.email_sends)
        with progress.stage("permissions (100,000 users)"):
            permissions_run = permissions_bench.permissions_run()
        # Needs the permissions section's 100,000 users.
        with progress.stage("seed design comparison"):
            seed_run = seed.seed_run(samples=args.seed_samples)
        with progress.stage("HTTP through gunicorn"):
            http_run = http_bench.http_run(seconds=args.http_seconds)
        with progress.stage("sv_sdk vs better-auth"):
            peer_run = peer_bench.peer_run(seconds=args.http_seconds)
        with progress.stage("PgBouncer against a direct connection"):
            pooler_run = pooler_bench.pooler_run(seconds=args.http_seconds)
        # Last: it leaves millions of rows behind.
        with progress.stage("audit log"):
            audit_run = audit_bench.audit_bench(
                rows=args.audit_rows, inserts_per_writer=args.audit_inserts
            )
        # On the audit section's rows and the permissions section's users.
        with progress.stage("console pages"):
            console_run = console_bench.console_run()
        with progress.stage("partitioning a copy of the audit rows"):
            partitions_run = partitions_bench.partitions_run()
        # Last: it empties the users and the audit log, and refills them step by step.
        with progress.stage("growth with data"):
            growth_run = growth_bench.growth_run(rows=args.audit_rows)
        host = report.machine()

    wall = time.monotonic() - started
    goals = targets_bench.targets(run, cost, permissions_run, seed_run, http_run, host.cores)
    print(targets_bench.text(goals, http_run))
    print("\n" + seed.text(seed_run))
    print("\n" + report.text(run, cost, host))
    print("\n" + email_bench.text(email_runs))
    print("\n" + permissions_bench.text(permissions_run))
    print("\n" + peer_bench.text(peer_run))
    print("\n" + audit_bench.text(audit_run))
    print("\n" + console_bench.text(console_run))
    print("\n" + partitions_bench.text(partitions_run))
    print("\n" + pooler_bench.text(pooler_run))
    print("\n" + growth_bench.text(growth_run))
    print("\n" + replicas_bench.text(replicas_run))
    docs = settings.BASE_DIR / "docs"
    docs.mkdir(exist_ok=True)
    chart = docs / "benchmarks.png"
    try:
        seed_chart(seed_run, chart)
    except ImportError as exc:  # matplotlib is a dev dependency; the tables matter more
        print(f"no chart: {exc}")
        chart = None
    growth_chart = growth_bench.chart(growth_run, docs)
    path = docs / "benchmarks.md"
    path.write_text(
        report.markdown(
            run,
            cost,
            host,
            when,
            wall,
            targets_bench.markdown(goals, http_run),
            seed.markdown(seed_run, chart.name if chart else None),
            peer_bench.markdown(peer_run),
            email_bench.markdown(email_runs),
            permissions_bench.markdown(permissions_run),
            audit_bench.markdown(audit_run),
            console_bench.markdown(console_run),
            partitions_bench.markdown(partitions_run),
            pooler_bench.markdown(pooler_run),
            growth_bench.markdown(growth_run, growth_chart),
            replicas_bench.markdown(replicas_run),
        )
    )
    print(
        f"\nwrote {path.relative_to(settings.BASE_DIR)}" + (f" and {chart.name}" if chart else "")
    )
    print(f"measured in {wall / 60:.1f} min")
    # Missing a target is a finding, not a failure: only an exception above exits non-zero.
    return 0


if __name__ == "__main__":
    sys.exit(main())
