"""The chart of the seed comparison (PNG, matplotlib's Agg backend: no display needed)."""

from pathlib import Path

from .seed import SeedRun


def seed_chart(run: SeedRun, path: Path) -> None:
    """Bars of p50 per operation for each design, p99 as whiskers, on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row.name.split(" (")[0].split(":")[0] for row in run.rows]
    positions = range(len(labels))
    width = 0.27
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=110)
    for offset, design, colour, pick in (
        (-width, "sv_sdk code (ORM, full guarantees)", "#2c5282", lambda r: r.code),
        (0, "one database, hand-written SQL", "#63b3ed", lambda r: r.single),
        (width, "four databases, hand-written SQL (rejected)", "#c05621", lambda r: r.four),
    ):
        p50 = [pick(row).p50_ms for row in run.rows]
        p99 = [pick(row).p99_ms for row in run.rows]
        bars = ax.bar(
            [p + offset for p in positions],
            p50,
            width,
            label=design,
            color=colour,
            yerr=[[0] * len(p50), [hi - lo for lo, hi in zip(p50, p99, strict=True)]],
            capsize=4,
        )
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in p50], padding=2, fontsize=8)
    ax.set_yscale("log")
    # Headroom above the tallest whisker for the legend.
    ax.set_ylim(
        top=max(lat.p99_ms for row in run.rows for lat in (row.code, row.single, row.four)) * 30
    )
    ax.set_ylabel("milliseconds (bar p50, whisker p99; log scale)")
    ax.set_xticks(list(positions), labels, rotation=12, ha="right", fontsize=9)
    ax.set_title(f"Seed design table, measured at {run.users:,} users")
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(axis="y", which="both", alpha=0.25)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
