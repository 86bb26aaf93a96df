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
    args = parser.parse_args(argv)

    # Forced, not defaulted: a settings module from the shell would point at the developer's data.
    os.environ["DJANGO_SETTINGS_MODULE"] = "sv_sdk.settings.bench"
    import django

    django.setup()
    from django.conf import settings

    from . import report
    from .database import bench_database
    from .onboarding import hash_cost, onboarding_run

    when = datetime.now(UTC)
    with bench_database():
        run = onboarding_run(iterations=args.onboard_iterations, warmup=args.warmup)
        cost = hash_cost()
        host = report.machine()

    print(report.text(run, cost, host))
    path = settings.BASE_DIR / "docs" / "benchmarks.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(report.markdown(run, cost, host, when))
    print(f"\nwrote {path.relative_to(settings.BASE_DIR)}")
    # Missing a target is a finding, not a failure: only an exception above exits non-zero.
    return 0


if __name__ == "__main__":
    sys.exit(main())
