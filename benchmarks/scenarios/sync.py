"""`sync`: N trivial sync flow runs submitted at once; each runs in a worker thread.

Same shape as `throughput` (one loop submits, with `submit_many` on SQLite, then every result
is awaited), with the runtime's default thread limit. No target of its own: Prefect's sync
flows are compared in `prefect`.
"""

from __future__ import annotations

from runtime.bench.model import ScenarioResult
from runtime.bench.session import Session

from ..config import Config
from . import throughput

__all__ = ["DESCRIPTION", "NAME", "run"]

NAME = "sync"
DESCRIPTION = "N trivial sync flow runs at once, each in a worker thread"
SIZES = (1_000, 10_000)


def run(session: Session[Config]) -> ScenarioResult:
    """Measure sync flows at every size on every selected store."""
    config = session.config
    result = ScenarioResult(NAME, DESCRIPTION, chart="runs_per_s")
    for store in config.stores:
        for n in config.sizes(SIZES, smoke=(50,)):
            row = throughput.measure_flowactor(session, n, store, config.backend, flow="sync")
            row.scenario = NAME
            result.rows.append(row)
    return result
