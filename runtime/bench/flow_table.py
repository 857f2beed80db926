"""What `flowactor bench TARGET` shows: its figures, and the table with one column per backend."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from .flow_job import FINAL_ORDER, STATE_KEYS
from .model import Figure, Row
from .report import format_value

__all__ = ["CHARTS", "figures", "footer", "print_flow_table", "table_rows"]

_STATES = tuple(
    Figure(STATE_KEYS[t], f"runs {t.name.capitalize()}", fmt=",.0f", total=True)
    for t in FINAL_ORDER
)
_CANCEL = (
    Figure("cancel_total_ms", "cancel: until all final", "ms", ",.1f"),
    Figure("cancel_p50_ms", "cancel: per run p50", "ms", ",.1f"),
    Figure("cancel_p99_ms", "cancel: per run p99", "ms", ",.1f"),
    Figure("cancel_requested", "runs cancelled in flight", fmt=",.0f", total=True),
    Figure("not_submitted", "runs not submitted", fmt=",.0f", total=True),
)
CHARTS = ("runs_per_s", "latency_p50_ms", "latency_p99_ms", "kib_per_run", "cancel_total_ms")
"""The metrics `--plot` draws, one panel each (those a run measured)."""


def figures(cancel: bool) -> tuple[Figure, ...]:
    """The figures of a flow's rows, in table order (the cancel's when `cancel_after` is set)."""
    return (
        Figure("runs_per_s", "runs/s", fmt=",.0f"),
        Figure("us_per_run", "time per run", "µs", ",.1f"),
        Figure("latency_p50_ms", "latency p50", "ms", ",.2f"),
        Figure("latency_p99_ms", "latency p99", "ms", ",.2f"),
        *_STATES,
        Figure("peak_rss_mb", "peak RSS", "MB", ",.1f"),
        Figure("kib_per_run", "memory per concurrent run", "KiB", ",.1f"),
        *(_CANCEL if cancel else ()),
    )


def _cell(row: Row, figure: Figure) -> str:
    if row.errors and not row.rounds:
        return "FAILED"
    unit = "" if figure.unit in ("", "x") else f" {figure.unit}"
    if figure.total:
        return format_value(row.total(figure.key), figure.fmt)
    summary = row.summary(figure.key)
    text = format_value(summary.median, figure.fmt) + unit
    if len(summary.values) > 1:
        text += (
            f" ({format_value(summary.min, figure.fmt)}-{format_value(summary.max, figure.fmt)})"
        )
    return text


def table_rows(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    """One tuple per figure: its label, then one cell per row (backend)."""
    if not rows:
        return []
    return [(f.label, *(_cell(row, f) for row in rows)) for f in rows[0].figures]


def footer(rows: Sequence[Row]) -> list[str]:
    """A line for every backend whose runs did not all end as expected, and every error."""
    lines: list[str] = []
    for row in rows:
        if row.rounds and not row.completed:
            ended = [
                f"{row.total(f.key):,.0f} {f.label.removeprefix('runs ')}"
                for f in _STATES
                if row.total(f.key)
            ]
            lines.append(
                f"{row.case}: not every run ended as expected ({', '.join(ended) or 'none ended'}"
                f" of {row.total('submitted'):,.0f} submitted)"
            )
        for error in row.errors:
            text = error.strip().splitlines() or [""]
            lines.append(f"{row.case}: {text[0]}")
            if len(text) > 1:
                lines.append(f"    {text[-1]}")
    return lines


def print_flow_table(
    title: str, caption: str, rows: Sequence[Row], out: TextIO | None = None
) -> None:
    """The table (rich's on a terminal, else plain text), then the footer."""
    out = sys.stdout if out is None else out
    header = ("metric", *(row.case for row in rows))
    body = table_rows(rows)
    if out is sys.stdout and out.isatty():
        from rich.console import Console  # here: measurement processes never draw
        from rich.table import Table

        table = Table(title=title, caption=caption, header_style="bold")
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for cells in body:
            table.add_row(*cells)
        Console().print(table)
    else:
        widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(header)]
        print(title, file=out)
        print(caption, file=out)
        print(file=out)
        for cells in (header, tuple("-" * w for w in widths), *body):
            parts = [
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ]
            print("  ".join(parts).rstrip(), file=out)
    for line in footer(rows):
        print(line, file=out)
    out.flush()
