"""`throughput`: N trivial flow runs submitted at once; runs/s, µs per run and peak RSS.

`--submitters K` tasks (64 by default) share the N submits, each submitting its share in a
loop; then every result is awaited. Several submitters matter on a durable store, where a
submit returns only once its run is committed: one loop would wait for one commit per run.
Wall time runs from the first submit to the last result; the runtime's start-up and a warm-up
batch (in its own runtime and store) are excluded. Afterwards the store must hold N runs in
COMPLETED.
"""

from __future__ import annotations

import contextlib
import gc
import math
from typing import Any

import anyio

from runtime import Flow, FlowRunHandle, Runtime, StateType
from runtime.bench import loops
from runtime.bench.measure import CpuShare, Probe, timer
from runtime.bench.model import Figure, Row, ScenarioResult, Target
from runtime.bench.session import Session
from runtime.bench.stores import remove_sqlite, store_url

from ..config import Config
from ..flows import trivial, trivial_sync
from ._common import check, make_row

__all__ = ["DESCRIPTION", "FIGURES", "NAME", "flowactor_job", "measure_flowactor", "run"]

NAME = "throughput"
DESCRIPTION = "N trivial async flow runs submitted at once: runs/s and µs per run"
SIZES = (1_000, 10_000, 100_000)
JOB = "benchmarks.scenarios.throughput:flowactor_job"

FIGURES = (
    Figure("runs_per_s", "runs/s"),
    Figure("us_per_run", "µs per run", "µs", ",.1f"),
    Figure("peak_rss_mb", "peak RSS", "MB", ",.0f"),
)
TARGETS = {
    "memory": Target("runs_per_s", ">=", 20_000, ">= 20,000 runs/s at N=10,000", 10_000),
    "sqlite": Target("runs_per_s", ">=", 10_000, ">= 10,000 runs/s at N=10,000", 10_000),
}


# -- in the measurement process ---------------------------------------------------------------
async def run_batch(
    url: str,
    flow: Flow[..., Any],
    n: int,
    probe: Probe,
    cpu: CpuShare | None = None,
    *,
    submitters: int = 1,
) -> dict[str, Any]:
    """Submit `n` runs of `flow` from `submitters` tasks, then await them all; verify the store.

    Submitting is a checkpoint, so runs already submitted progress while later ones are being
    submitted, as they would for an application feeding the runtime from a few loops.
    """
    async with Runtime(store=url) as rt:
        wrong = 0
        handles: list[FlowRunHandle | None] = [None] * n

        async def submit_share(part: int, step: int) -> None:
            for i in range(part, n, step):
                handles[i] = await rt.submit(flow, i)

        probe.start(n, "run" if cpu is not None else "warm-up")
        started = timer()
        with cpu.measuring() if cpu is not None else contextlib.nullcontext():
            step = max(1, min(submitters, n))
            async with anyio.create_task_group() as tg:
                for part in range(step):
                    tg.start_soon(submit_share, part, step)
            for i, handle in enumerate(handles):
                assert handle is not None  # every submitter finished without raising
                try:
                    value = await handle.result()
                except Exception:
                    value = None
                if value != i:
                    wrong += 1
                probe.done += 1
            wall = timer() - started
        probe.start(n, "verify")
        completed = len(await rt.list_flow_runs(state=StateType.COMPLETED))
        closing = timer()
    close_s = timer() - closing
    return {
        "n": n,
        "wall_s": wall,
        "runs_per_s": n / wall if wall > 0 else math.nan,
        "us_per_run": wall / n * 1e6,
        "completed": completed,
        "wrong_results": wrong,
        "expected": n,
        "ok": completed == n and wrong == 0,
        "close_s": close_s,
        "submitters": submitters,
    }


def flowactor_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round: a warm-up batch, then N runs measured (`flow`: "async" or "sync")."""
    return loops.run(_flowactor_main, params, probe, backend=params["backend"])


async def _flowactor_main(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    n, store, workdir = int(params["n"]), str(params["store"]), str(params["workdir"])
    flow = trivial_sync if params.get("flow") == "sync" else trivial
    warmup = int(params.get("warmup", 0))
    submitters = int(params.get("submitters", 1))
    if warmup:
        url = store_url(store, workdir, "warmup")
        await run_batch(url, flow, warmup, probe, submitters=submitters)
        remove_sqlite(url)
    gc.collect()
    url = store_url(store, workdir, "run")
    cpu = CpuShare()
    try:
        with probe.sampling() as sampler:
            figures = await run_batch(url, flow, n, probe, cpu, submitters=submitters)
    finally:
        remove_sqlite(url)
    figures.update(sampler.figures())
    figures["cpu_foreign_share"] = cpu.foreign_share
    return figures


# -- in the harness ---------------------------------------------------------------------------
def measure_flowactor(
    session: Session[Config], n: int, store: str, backend: str, flow: str = "async"
) -> Row:
    """flowactor's throughput rounds for one case (shared between scenarios)."""
    config = session.config
    params = {
        "n": n,
        "store": store,
        "backend": backend,
        "flow": flow,
        "warmup": config.warmup(n),
        "submitters": config.submitters,
    }
    who = "flowactor" if flow == "async" else f"flowactor {flow}"
    measured = session.measure(JOB, params, label=f"{who} · {store} · {backend} · N={n:,}")
    return make_row(NAME, f"{who} · {store} · {backend}", params, measured, FIGURES)


def run(session: Session[Config]) -> ScenarioResult:
    """Measure every size on every selected store, and check the targets at N=10,000."""
    config = session.config
    result = ScenarioResult(NAME, DESCRIPTION, chart="runs_per_s")
    for store in config.stores:
        rows = [measure_flowactor(session, n, store, config.backend) for n in config.sizes(SIZES)]
        check(rows, TARGETS[store])
        result.rows.extend(rows)
    return result
