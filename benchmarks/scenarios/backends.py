"""`backends`: throughput on asyncio, asyncio + uvloop and trio, side by side.

The `throughput` job at one N on each backend (in the shape `throughput` judges the store by),
with the floor on the same backend, so each line also says how far flowactor is from what that
backend allows. Each backend's time per run is compared with asyncio's (round i against round
i): trio's must stay within 1.5x.
"""

from __future__ import annotations

from runtime.bench import loops
from runtime.bench.model import BACKENDS, Figure, ScenarioResult, Target
from runtime.bench.session import Session

from ..config import Config
from . import floor, throughput
from ._common import add_ratio

__all__ = ["DESCRIPTION", "NAME", "run"]

NAME = "backends"
DESCRIPTION = "throughput on asyncio, asyncio + uvloop and trio, each with its own floor"
SIZES = (10_000,)

FIGURES = (
    Figure("runs_per_s", "runs/s"),
    Figure("us_per_run", "µs per run", "µs", ",.1f"),
    Figure("floor_us_per_run", "floor µs per run", "µs", ",.1f"),
    Figure("ratio", "flowactor / floor", "x", ",.2f"),
    Figure("time_vs_asyncio", "time per run / asyncio's", "x", ",.2f"),
)
TARGETS = {
    "trio": Target("time_vs_asyncio", "<=", 1.5, "trio's time per run <= 1.5x asyncio's", 10_000)
}


def run(session: Session[Config]) -> ScenarioResult:
    """Measure flowactor and the floor on every available backend; check trio against asyncio."""
    config = session.config
    result = ScenarioResult(NAME, DESCRIPTION, chart="runs_per_s")
    for backend in BACKENDS:
        problem = loops.available(backend)
        if problem is not None:
            result.notes.append(f"{backend} skipped: {problem}")
    for store in config.stores:
        for n in config.sizes(SIZES):
            baseline = None
            for backend in BACKENDS:
                if loops.available(backend) is not None:
                    continue
                row = throughput.measure_flowactor(session, n, store, backend)
                row.scenario, row.figures = NAME, FIGURES
                floor_row = floor.measure_floor(session, n, store, backend)
                for round_, other in zip(row.rounds, floor_row.rounds, strict=False):
                    round_["floor_us_per_run"] = other["us_per_run"]
                add_ratio(row, "ratio", row.rounds, floor_row.rounds, "wall_s")
                row.errors.extend(f"floor: {e}" for e in floor_row.errors)
                if baseline is None:
                    baseline = row
                add_ratio(row, "time_vs_asyncio", row.rounds, baseline.rounds, "us_per_run")
                if backend in TARGETS:
                    row.check(TARGETS[backend])
                result.rows.append(row)
    return result
