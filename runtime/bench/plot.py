"""`--plot FILE.png`: one chart per scenario (or per charted metric), from the JSON document.

matplotlib is an optional extra (`pip install "flowactor[bench]"`), imported only here and
only when a plot is asked for. `python -m runtime.bench.plot RESULTS.json OUT.png` redraws a
saved run.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["MissingExtra", "write_plot"]


class MissingExtra(RuntimeError):
    """An optional dependency of the harness is not installed."""


def _pyplot() -> Any:
    try:  # an optional extra: imported by name, so nothing needs its stubs
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        raise MissingExtra(
            "--plot needs matplotlib, which is not installed: "
            "pip install 'flowactor[bench]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def _main_figure(row: dict[str, Any], chart: str | None) -> dict[str, Any] | None:
    """The figure a row is charted by: the scenario's chart metric, else its first with values."""
    summary = row.get("summary", {})
    figures = [f for f in row.get("figures", []) if f["key"] in summary]
    for figure in figures:
        if figure["key"] == chart:
            return dict(figure)
    if chart in summary:
        return {"key": chart, "label": chart, "unit": ""}
    return dict(figures[0]) if figures else None


def _bars(ax: Any, scenario: dict[str, Any], chart: str | None) -> None:
    labels, medians, lows, highs, colors, hatches = [], [], [], [], [], []
    thresholds: dict[float, str] = {}
    unit = ""
    title = f"{scenario['name']}: {scenario['description']}"
    for row in scenario["rows"]:
        figure = _main_figure(row, chart)
        if figure is None:
            continue
        stats = row["summary"][figure["key"]]
        median = stats["median"] if stats["median"] is not None else math.nan
        n = row["params"].get("n")
        label = row["case"].replace(" · ", "\n") + (f"\nN={n:,}" if n else "")
        labels.append(f"{label}\n{figure['label']}")
        medians.append(median)
        lows.append(max(median - (stats["min"] if stats["min"] is not None else median), 0))
        highs.append(max((stats["max"] if stats["max"] is not None else median) - median, 0))
        if not row["completed"]:
            labels[-1] += "\nINCOMPLETE"
        colors.append("tab:gray" if row["case"].startswith("floor") else "tab:blue")
        hatches.append("" if row["completed"] else "//")
        unit = figure.get("unit") or unit
        if scenario.get("charts"):
            title = f"{scenario['name']}: {figure['label']}"
        for target in row.get("targets", []):
            if target["metric"] == figure["key"]:
                thresholds[target["threshold"]] = target["target"]
    positions = range(len(labels))
    bars = ax.bar(positions, medians, yerr=[lows, highs], color=colors, capsize=3)
    for bar, hatch in zip(bars, hatches, strict=True):
        bar.set_hatch(hatch)
    ax.set_xticks(list(positions), labels, fontsize=7)
    finite = [m for m in medians if m > 0 and math.isfinite(m)]
    if finite and max(finite) / min(finite) > 100:
        ax.set_yscale("log")
    for value, text in thresholds.items():
        ax.axhline(value, color="tab:red", linestyle="--", linewidth=1, label=f"target: {text}")
    if thresholds:
        ax.legend(fontsize=7, loc="best")
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=9)


def _charts(scenario: dict[str, Any]) -> list[str | None]:
    """The metrics a scenario is charted by, one panel each: `charts` where the rows have them."""
    keys = {k for row in scenario["rows"] for k in row.get("summary", {})}
    wanted = [c for c in scenario.get("charts") or () if c in keys]
    return list(wanted) or [scenario.get("chart")]


def write_plot(document: dict[str, Any], path: Path) -> None:
    """Draw every measured scenario of `document` into one PNG at `path`."""
    plt = _pyplot()
    panels = [
        (scenario, chart)
        for scenario in document["scenarios"]
        if scenario["rows"]
        for chart in _charts(scenario)
    ]
    if not panels:
        raise ValueError("nothing to plot: no scenario has figures")
    cols = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(8 * cols, 4.6 * rows), squeeze=False)
    for ax, (scenario, chart) in zip(axes.flat, panels, strict=False):
        _bars(ax, scenario, chart)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    machine, versions = document["machine"], document["versions"]
    fig.suptitle(
        f"flowactor {versions.get('flowactor')} · {machine['cpus_usable']} CPUs "
        f"({machine['cpu_model']}) · Python {versions['python']} · "
        f"median of {document['parameters']['rounds']} rounds, bars min-max",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str], prog: str = "python -m runtime.bench.plot") -> int:
    """Redraw a saved run: `RESULTS.json OUT.png`."""
    if len(argv) != 2:
        print(f"usage: {prog} RESULTS.json OUT.png", file=sys.stderr)
        return 2
    try:
        write_plot(json.loads(Path(argv[0]).read_text()), Path(argv[1]))
    except (MissingExtra, OSError, ValueError, KeyError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
