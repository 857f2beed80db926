"""`throughput`: N trivial flow runs submitted from one loop; runs/s, µs per run and peak RSS.

The measured shape (see `_shapes`) is the one the targets are set for: on the memory store
one loop awaits `rt.submit(flow, i)` for each i, then every result; on SQLite one loop awaits
`rt.submit_many(flow, range(N))` (a submit returns once its run is committed, so a batch
creates many runs per commit), then every result. On SQLite, at N = 10,000, two more rows for
comparison: the one-loop `submit`, and `--submitters K` tasks sharing the submits (K > 1).
Wall time runs from the first submit to the last result; the Runtime's start-up and a warm-up
batch (in its own Runtime and store) are excluded. Afterwards the store must hold N runs
Completed.
"""

from __future__ import annotations

from typing import Any

from runtime.bench.measure import Probe
from runtime.bench.model import Figure, Row, ScenarioResult, Target
from runtime.bench.session import Session

from ..config import Config
from . import _shapes
from ._common import check, make_row

__all__ = ["DESCRIPTION", "FIGURES", "NAME", "PRIMARY", "flowactor_job", "measure_flowactor", "run"]

NAME = "throughput"
DESCRIPTION = "N trivial async flow runs submitted from one loop: runs/s and µs per run"
SIZES = (1_000, 10_000, 100_000)
COMPARED_SIZES = (10_000,)  # the sizes of the SQLite rows measured for comparison
JOB = "benchmarks.scenarios.throughput:flowactor_job"
PRIMARY = {"memory": "submit", "sqlite": "submit_many"}  # the shape each store is judged in

FIGURES = (
    Figure("runs_per_s", "runs/s"),
    Figure("us_per_run", "µs per run", "µs", ",.1f"),
    Figure("peak_rss_mb", "peak RSS", "MB", ",.0f"),
)
TARGETS = {
    "memory": Target(
        "runs_per_s", ">=", 12_000, ">= 12,000 runs/s at N=10,000 (one loop submits)", 10_000
    ),
    "sqlite": Target(
        "runs_per_s", ">=", 6_000, ">= 6,000 runs/s at N=10,000 (one loop, submit_many)", 10_000
    ),
}


def flowactor_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round in its own process: a warm-up batch, then N runs fed in `params["shape"]`."""
    return _shapes.batch_job(params, probe)


# -- in the harness ---------------------------------------------------------------------------
def measure_flowactor(
    session: Session[Config],
    n: int,
    store: str,
    backend: str,
    flow: str = "async",
    shape: str | None = None,
) -> Row:
    """flowactor's rounds for one case (shared between scenarios: measured once per run).

    `shape`: how the runs are fed (`_shapes.SHAPES`); by default the store's `PRIMARY` one.
    """
    config = session.config
    shape = PRIMARY[store] if shape is None else shape
    params: dict[str, Any] = {
        "n": n,
        "store": store,
        "backend": backend,
        "flow": flow,
        "shape": shape,
        "warmup": config.warmup(n),
    }
    if shape == "shared":
        params["submitters"] = config.submitters
    who = "flowactor" if flow == "async" else f"flowactor {flow}"
    how = _shapes.label(shape, config.submitters)
    measured = session.measure(JOB, params, label=f"{who} · {store} · {backend} · {how} · N={n:,}")
    return make_row(NAME, f"{who} · {store} · {backend} · {how}", params, measured, FIGURES)


def run(session: Session[Config]) -> ScenarioResult:
    """Measure every size on every selected store, and check the targets at N=10,000."""
    config = session.config
    result = ScenarioResult(NAME, DESCRIPTION, chart="runs_per_s")
    for store in config.stores:
        rows = [measure_flowactor(session, n, store, config.backend) for n in config.sizes(SIZES)]
        check(rows, TARGETS[store])
        result.rows.extend(rows)
        if store != "sqlite":
            continue
        extra = ["submit"] + (["shared"] if config.submitters > 1 else [])
        for n in config.sizes(COMPARED_SIZES):
            for shape in extra:
                result.rows.append(
                    measure_flowactor(session, n, store, config.backend, shape=shape)
                )
    return result
