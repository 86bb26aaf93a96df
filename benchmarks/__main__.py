"""Run the benchmarks against a throwaway database; print the results and write the docs page."""

import argparse
import os
import sys
from datetime import UTC, datetime


def _at_least_100(value: str) -> int:
    number = int(value)
    if number < 100:
        raise argparse.ArgumentTypeError("need at least 100 calls for a p99")
    return number


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
        default=2_000_000,
        help="audit rows for the query benchmark (default 2,000,000; the design asks 10,000,000)",
    )
    parser.add_argument(
        "--audit-inserts",
        type=int,
        default=2000,
        help="audit inserts per writer process (default 2000)",
    )
    args = parser.parse_args(argv)

    # Forced, not defaulted: a settings module from the shell would point at the developer's data.
    os.environ["DJANGO_SETTINGS_MODULE"] = "sv_sdk.settings.bench"
    import django

    django.setup()
    from django.conf import settings

    from . import audit as audit_bench
    from . import email as email_bench
    from . import permissions as permissions_bench
    from . import report
    from .database import bench_database
    from .onboarding import hash_cost, onboarding_run

    when = datetime.now(UTC)
    with bench_database():
        run = onboarding_run(iterations=args.onboard_iterations, warmup=args.warmup)
        cost = hash_cost()
        email_runs = email_bench.email_runs(sends=args.email_sends)
        permissions_run = permissions_bench.permissions_run()
        # Last: it leaves millions of rows behind.
        audit_run = audit_bench.audit_bench(
            rows=args.audit_rows, inserts_per_writer=args.audit_inserts
        )
        host = report.machine()

    print(report.text(run, cost, host))
    print("\n" + email_bench.text(email_runs))
    print("\n" + permissions_bench.text(permissions_run))
    print("\n" + audit_bench.text(audit_run))
    path = settings.BASE_DIR / "docs" / "benchmarks.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        report.markdown(
            run,
            cost,
            host,
            when,
            email_bench.markdown(email_runs),
            permissions_bench.markdown(permissions_run),
            audit_bench.markdown(audit_run),
        )
    )
    print(f"\nwrote {path.relative_to(settings.BASE_DIR)}")
    # Missing a target is a finding, not a failure: only an exception above exits non-zero.
    return 0


if __name__ == "__main__":
    sys.exit(main())
