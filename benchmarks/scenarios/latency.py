"""`latency`: one run at a time; p50 / p99 from submit to final state.

Each round warms up with a few runs (excluded), then times N runs one after another, each
from `rt.submit(...)` to `await handle.wait()` returning its final state.
"""

from __future__ import annotations

import gc
from typing import Any

from runtime import Runtime, StateType
from runtime.bench import loops
from runtime.bench.measure import CpuShare, Probe, percentile, timer
from runtime.bench.model import Figure, ScenarioResult, Target
from runtime.bench.session import Session
from runtime.bench.stores import remove_sqlite, store_url

from ..config import Config
from ..flows import trivial
from ._common import check, make_row

__all__ = ["DESCRIPTION", "NAME", "latency_job", "run"]

NAME = "latency"
DESCRIPTION = "one trivial async run at a time: submit to final state, p50 / p99"
SIZES = (1_000,)
JOB = "benchmarks.scenarios.latency:latency_job"

FIGURES = (
    Figure("p50_us", "p50", "µs", ",.0f"),
    Figure("p99_us", "p99", "µs", ",.0f"),
    Figure("max_us", "max", "µs", ",.0f"),
)
TARGETS = {
    "memory": Target("p50_us", "<", 200.0, "p50 < 200 µs"),
    "sqlite": Target("p50_us", "<", 1_000.0, "p50 < 1 ms"),
}


def latency_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round: warm-up runs, then N runs timed one by one."""
    return loops.run(_latency_main, params, probe, backend=params["backend"])


async def _latency_main(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    n, warmup = int(params["n"]), int(params.get("warmup", 0))
    url = store_url(str(params["store"]), str(params["workdir"]), "latency")
    times: list[float] = []
    completed_waits = 0
    cpu = CpuShare()
    try:
        async with Runtime(store=url) as rt:
            probe.start(warmup, "warm-up")
            for i in range(warmup):
                await (await rt.submit(trivial, i)).wait()
                probe.done += 1
            gc.collect()
            probe.start(n, "run")
            with probe.sampling() as sampler, cpu.measuring():
                for i in range(n):
                    started = timer()
                    handle = await rt.submit(trivial, i)
                    state = await handle.wait()
                    times.append(timer() - started)
                    completed_waits += state.is_completed()
                    probe.done += 1
            completed = len(await rt.list_flow_runs(state=StateType.COMPLETED))
    finally:
        remove_sqlite(url)
    micros = [t * 1e6 for t in times]
    return {
        "n": n,
        "p50_us": percentile(micros, 50),
        "p90_us": percentile(micros, 90),
        "p99_us": percentile(micros, 99),
        "max_us": max(micros),
        "min_us": min(micros),
        "mean_us": sum(micros) / len(micros),
        "completed": completed - warmup,
        "expected": n,
        "ok": completed == n + warmup and completed_waits == n,
        **sampler.figures(),
        "cpu_foreign_share": cpu.foreign_share,
    }


def run(session: Session[Config]) -> ScenarioResult:
    """Time N sequential runs per round on every selected store; check p50."""
    config = session.config
    result = ScenarioResult(NAME, DESCRIPTION, chart="p50_us")
    for store in config.stores:
        rows = []
        for n in config.sizes(SIZES, smoke=(50,)):
            params = {
                "n": n,
                "store": store,
                "backend": config.backend,
                "warmup": 5 if config.smoke else 50,
            }
            label = f"latency · {store} · {config.backend} · N={n:,}"
            measured = session.measure(JOB, params, label=label)
            case = f"flowactor · {store} · {config.backend}"
            rows.append(make_row(NAME, case, params, measured, FIGURES))
        check(rows, TARGETS[store])
        result.rows.extend(rows)
    return result
