"""Reporting: the results table (rich on a terminal, else plain text) and the JSON document."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .model import Figure, Row, ScenarioResult, Verdict

__all__ = [
    "METHOD",
    "SCHEMA",
    "build_document",
    "format_value",
    "machine",
    "print_table",
    "source_fingerprint",
    "table_lines",
    "versions",
    "write_json",
]

SCHEMA = "flowactor-bench/1"
METHOD = (
    "each round in a fresh process that warms up first (excluded); "
    "median and min-max over rounds; peak RSS = max(ru_maxrss, 50 ms samples)"
)
_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the runtime package
_PACKAGES = (
    "flowactor",
    "anyio",
    "sniffio",
    "trio",
    "uvloop",
    "msgspec",
    "attrs",
    "cattrs",
    "prefect",
    "dbos",
    "rich",
    "matplotlib",
)
_HEADER = ("scenario", "case", "N", "metric", "median", "min-max", "target", "result")


# -- the JSON document ------------------------------------------------------------------------
def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = next(
        (
            int(line.split()[1])
            for line in _read("/proc/meminfo").splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def versions() -> dict[str, str | None]:
    """Python, SQLite, the packages that matter, and the source tree's commit."""
    found: dict[str, str | None] = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
    }
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    found["git_commit"], found["git_dirty"] = _git()
    return found


def source_fingerprint() -> str:
    """A hash of flowactor's source (actors/ and runtime/): did it change during the run?"""
    root = _ROOT
    digest = hashlib.sha256()
    for package in ("actors", "runtime"):
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            with contextlib.suppress(OSError):
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _git() -> tuple[str | None, str | None]:
    """The commit of flowactor's source, and whether it has changes: for a checkout only."""
    root = _ROOT
    if not (root / ".git").exists():  # an installed package: no commit to speak of
        return None, None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, ("yes" if status.strip() else "no") if commit else None


def _clean(value: Any) -> Any:
    """JSON without NaN/inf (they become null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def build_document(
    parameters: dict[str, Any],
    results: Sequence[ScenarioResult],
    *,
    argv: Sequence[str],
    started: dt.datetime,
    elapsed_s: float,
    source: dict[str, Any],
) -> dict[str, Any]:
    """Everything about this run: machine, versions, parameters and every figure.

    `parameters`: what the run was asked to do (after `argv`, under "parameters").
    `source` holds the versions taken when the run started and the source fingerprint at its
    start and end (flowactor's source may be edited while a long run goes on).
    """
    verdicts = [v for r in results for v in r.verdicts]
    document: dict[str, Any] = _clean(
        {
            "schema": SCHEMA,
            "started_at": started.isoformat(timespec="seconds"),
            "elapsed_s": elapsed_s,
            "machine": machine(),
            "versions": source["versions"],
            "source": {k: v for k, v in source.items() if k != "versions"},
            "parameters": {"argv": list(argv), **parameters},
            "targets": {
                "passed": sum(v.passed for v in verdicts),
                "failed": sum(not v.passed for v in verdicts),
            },
            "scenarios": [r.as_json() for r in results],
        }
    )
    return document


def write_json(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


# -- the table --------------------------------------------------------------------------------
def format_value(value: float, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def _verdict_for(row: Row, figure: Figure) -> Verdict | None:
    return next((v for v in row.verdicts if v.target.key == figure.key), None)


def _cells(result: ScenarioResult) -> list[tuple[str, ...]]:
    """One tuple of cells per metric line of the scenario."""
    lines: list[tuple[str, ...]] = []
    first = True
    for row in result.rows:
        n = f"{row.n:,}" if row.n is not None else ""
        case = row.case if row.completed else f"{row.case} (INCOMPLETE)"
        shown = 0
        for figure in row.figures:
            summary = row.summary(figure.key)
            if not summary.values and _verdict_for(row, figure) is None:
                continue
            verdict = _verdict_for(row, figure)
            unit = figure.unit if figure.unit in ("", "x") else f" {figure.unit}"
            shown_value = row.total(figure.key) if figure.total else summary.median
            spread = (
                f"{format_value(summary.min, figure.fmt)}-{format_value(summary.max, figure.fmt)}"
                if len(summary.values) > 1 and not figure.total
                else ""
            )
            target = verdict.target.text if verdict else ""
            word = ""
            if verdict is not None:
                word = verdict.word + (f" ({verdict.note})" if verdict.note else "")
            lines.append(
                (
                    result.name if first else "",
                    case if shown == 0 else "",
                    n if shown == 0 else "",
                    figure.label,
                    format_value(shown_value, figure.fmt) + unit,
                    spread,
                    target,
                    word,
                )
            )
            first = False
            shown += 1
        if shown == 0:
            lines.append((result.name if first else "", case, n, "no figures", "", "", "", ""))
            first = False
    return lines


def table_lines(results: Sequence[ScenarioResult]) -> list[str]:
    """The table as plain text lines."""
    body: list[tuple[str, ...]] = []
    for result in results:
        if result.skipped is not None:
            body.append((result.name, f"skipped: {result.skipped}", "", "", "", "", "", ""))
        else:
            body.extend(_cells(result))
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(_HEADER)]
    right = {2, 4, 5}

    def fmt(cells: tuple[str, ...]) -> str:
        out = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [fmt(_HEADER), rule]
    previous = ""
    for cells in body:
        if cells[0] and previous:
            lines.append("")
        previous = cells[0] or previous
        lines.append(fmt(cells))
    return lines


def _footer(results: Sequence[ScenarioResult], warnings: Sequence[str]) -> list[str]:
    verdicts = [v for r in results for v in r.verdicts]
    lines = [f"WARNING: {w}" for w in warnings]
    lines += [
        f"targets: {sum(v.passed for v in verdicts)} PASS, "
        f"{sum(not v.passed for v in verdicts)} FAIL"
    ]
    for result in results:
        lines.extend(f"note ({result.name}): {note}" for note in result.notes)
        for row in result.rows:
            for error in row.errors:
                first = error.strip().splitlines()
                tail = first[-1] if first else ""
                lines.append(f"error ({result.name}, {row.case}): {first[0] if first else ''}")
                if tail and tail != first[0]:
                    lines.append(f"    {tail}")
    return lines


def print_table(
    results: Sequence[ScenarioResult],
    out: TextIO | None = None,
    warnings: Sequence[str] = (),
) -> None:
    """Print the table (rich's on a terminal, else plain text) and the footer."""
    out = sys.stdout if out is None else out
    if out is sys.stdout and out.isatty():
        _rich_table(results)
    else:
        for line in table_lines(results):
            print(line, file=out)
    print(file=out)
    for line in _footer(results, warnings):
        print(line, file=out)
    out.flush()


def _rich_table(results: Sequence[ScenarioResult]) -> None:
    # Imported here: measurement processes import this package but never draw.
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for i, header in enumerate(_HEADER):
        table.add_column(header, justify="right" if i in {2, 4, 5} else "left")
    for result in results:
        if result.skipped is not None:
            reason = escape(f"skipped: {result.skipped}")
            table.add_row(result.name, reason, *[""] * 6, end_section=True)
            continue
        cells = _cells(result)
        for i, line in enumerate(cells):
            word = line[7]
            style = "green" if word.startswith("PASS") else "red" if word.startswith("FAIL") else ""
            styled = f"[{style}]{escape(word)}[/]" if style else escape(word)
            plain = [escape(c) for c in line[:7]]
            table.add_row(*plain, styled, end_section=i == len(cells) - 1)
    Console().print(table)
