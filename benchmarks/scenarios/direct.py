"""`direct`: N concurrent tasks each awaiting `my_flow(i)`, against a one-loop submit.

What a web app does: every request handler calls the flow directly. Each round measures, in
one process and one after the other (each after its own warm-up, each in a fresh Runtime and
store), the one-loop `submit` shape and the `direct` shape at the same N (see `_shapes`), so
that their ratio compares figures taken under the same load: direct µs per run / submit µs
per run. The target is on the memory store.
"""

from __future__ import annotations

from typing import Any

from runtime.bench.model import Figure, ScenarioResult, Target
from runtime.bench.session import Session

from ..config import Config
from ._common import check, make_row

__all__ = ["DESCRIPTION", "NAME", "run"]

NAME = "direct"
DESCRIPTION = "N tasks each awaiting my_flow(i), against one loop submitting: cost per run"
SIZES = (10_000,)
JOB = "benchmarks.scenarios._shapes:shapes_job"

FIGURES = (
    Figure("direct_runs_per_s", "direct calls runs/s"),
    Figure("direct_us_per_run", "direct calls µs per run", "µs", ",.1f"),
    Figure("submit_us_per_run", "one-loop submit µs per run", "µs", ",.1f"),
    Figure("direct_vs_submit", "direct / submit per run", "x", ",.2f"),
    Figure("direct_peak_rss_mb", "peak RSS (direct)", "MB", ",.0f"),
)
TARGETS = {
    "memory": Target(
        "direct_vs_submit", "<=", 1.3, "direct call <= 1.3x a submit's cost per run", 10_000
    ),
}


def run(session: Session[Config]) -> ScenarioResult:
    """Measure both shapes per round on every selected store; check the ratio on memory."""
    config = session.config
    result = ScenarioResult(NAME, DESCRIPTION, chart="direct_vs_submit")
    for store in config.stores:
        rows = []
        for n in config.sizes(SIZES):
            params: dict[str, Any] = {
                "n": n,
                "store": store,
                "backend": config.backend,
                "shapes": ["submit", "direct"],
                "warmup": config.warmup(n),
            }
            label = f"direct vs submit · {store} · {config.backend} · N={n:,}"
            measured = session.measure(JOB, params, label=label)
            case = f"flowactor · {store} · {config.backend}"
            row = make_row(NAME, case, params, measured, FIGURES)
            for round_ in row.rounds:
                submit = round_.get("submit_us_per_run")
                direct = round_.get("direct_us_per_run")
                round_["direct_vs_submit"] = direct / submit if submit and direct else None
            rows.append(row)
        if store in TARGETS:
            check(rows, TARGETS[store])
        result.rows.extend(rows)
    return result
