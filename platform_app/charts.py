"""Small SVG charts drawn on the server for the dashboard: no script, readable by screen readers.

Each chart is an `<svg role="img">` labelled by its own <title> and <desc> (the figures in
words), with a <title> on every bar or point for the exact number under the pointer.
"""

from dataclasses import dataclass, field

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 520, 170
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 10, 22
PALETTE = ["#417690", "#ba2121", "#79aec8", "#e6a700", "#6a4c93", "#2e7d32", "#8d5524"]


@dataclass(frozen=True)
class Series:
    name: str
    values: list[int]
    url: str = ""


@dataclass(frozen=True)
class Figure:
    """One chart: buckets along the x axis (labelled every `label_every`), series of counts."""

    key: str
    title: str
    summary: str
    url: str
    buckets: list[str]
    series: list[Series]
    kind: str = "bars"  # "bars" (stacked) or "lines"
    label_every: int = 7
    # Buckets to mark with a triangle above the plot (e.g. lockouts), with what happened.
    marks: dict[int, str] = field(default_factory=dict)

    def svg(self) -> SafeString:
        return draw(self)


def _scale(peak: int) -> int:
    """A round top for the y axis at or above `peak` (1, 2 or 5 times a power of ten)."""
    magnitude = 1
    while magnitude * 10 < peak:
        magnitude *= 10
    return next(magnitude * m for m in (1, 2, 5, 10) if magnitude * m >= peak)


def _n(number: float) -> str:
    return f"{number:.1f}"


def draw(figure: Figure) -> SafeString:
    n = len(figure.buckets)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if figure.kind == "bars":
        peak = max(
            (sum(v) for v in zip(*(s.values for s in figure.series), strict=True)), default=0
        )
    else:
        peak = max((max(s.values, default=0) for s in figure.series), default=0)
    top = _scale(peak)
    step = plot_w / max(n, 1)

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * value / top

    parts = [
        format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" class="sv-axis"/>'
            '<text x="{}" y="{}" class="sv-tick" text-anchor="end">{}</text>'
            '<text x="{}" y="{}" class="sv-tick" text-anchor="end">0</text>',
            LEFT,
            TOP + plot_h,
            WIDTH - RIGHT,
            TOP + plot_h,
            LEFT - 4,
            TOP + 8,
            top,
            LEFT - 4,
            TOP + plot_h,
        )
    ]
    for i, bucket in enumerate(figure.buckets):
        if i % figure.label_every == 0:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" class="sv-tick">{}</text>',
                    _n(LEFT + i * step),
                    HEIGHT - 6,
                    bucket,
                )
            )
    if figure.kind == "bars":
        for i, bucket in enumerate(figure.buckets):
            base = 0
            for colour, series in zip(PALETTE, figure.series, strict=False):
                value = series.values[i]
                if value:
                    parts.append(
                        format_html(
                            '<rect x="{}" y="{}" width="{}" height="{}"'
                            ' fill="{}"><title>{}: {} {}</title></rect>',
                            _n(LEFT + i * step + 0.5),
                            _n(y(base + value)),
                            _n(max(step - 1, 0.5)),
                            _n(y(base) - y(base + value)),
                            colour,
                            bucket,
                            value,
                            series.name,
                        )
                    )
                base += value
    else:
        for colour, series in zip(PALETTE, figure.series, strict=False):
            points = " ".join(
                f"{LEFT + (i + 0.5) * step:.1f},{y(v):.1f}" for i, v in enumerate(series.values)
            )
            parts.append(
                format_html(
                    '<polyline points="{}" fill="none" stroke="{}" stroke-width="2">'
                    "<title>{}</title></polyline>",
                    points,
                    colour,
                    series.name,
                )
            )
    for i, what in sorted(figure.marks.items()):
        x = LEFT + (i + 0.5) * step
        parts.append(
            format_html(
                '<path d="M{} {} l-4 -7 h8 z" class="sv-mark"><title>{}: {}</title></path>',
                _n(x),
                TOP + 7,
                figure.buckets[i],
                what,
            )
        )
    return format_html(
        '<svg role="img" viewBox="0 0 {} {}" width="100%" aria-labelledby="{}-title {}-desc"'
        ' class="sv-chart"><title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        WIDTH,
        HEIGHT,
        figure.key,
        figure.key,
        figure.key,
        figure.title,
        figure.key,
        figure.summary,
        mark_safe("".join(parts)),  # noqa: S308 (each part escaped by format_html)
    )


def legend(figure: Figure) -> SafeString:
    """The series' names and colours, each linked to the list behind it."""
    return format_html_join(
        " ",
        '<a href="{}" class="sv-legend"><span style="background:{}"></span>{}</a>',
        (
            (series.url or figure.url, colour, series.name)
            for colour, series in zip(PALETTE, figure.series, strict=False)
        ),
    )
