"""The benchmark tables: aligned plain text for the terminal, Markdown for the docs page."""


def text_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Each column as wide as its widest cell, and a dashed line under the header."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return [line(header), line(tuple("-" * w for w in widths)), *(line(row) for row in rows)]


def markdown_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return ["| " + " | ".join(row) + " |" for row in [header, tuple("---" for _ in header), *rows]]
