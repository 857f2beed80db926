"""`dbos`: the same trivial async workflow on DBOS Transact and on flowactor, and the ratio.

Only when `dbos` is importable (it is never a dependency of flowactor). DBOS runs as the peer
benchmarks ran it: in-process, its system database a SQLite file in a fresh directory per
round, logging at WARNING, `max_executor_threads` bounded (64 by default: with DBOS's default
unbounded executor N = 10,000 starts a thread per blocked call and stalls), everything else
DBOS's defaults. Its start-up (`DBOS(...)` and `DBOS.launch()`) and its first (cold) workflow
are timed apart and excluded, then a small warm-up batch; then N workflows are awaited by N
concurrent tasks, and DBOS's own `list_workflows` must count them all SUCCESS. flowactor does
the same N concurrent trivial async flows on a fresh SQLite store, each awaited directly by its
own task (`await my_flow(i)` in N tasks), in its own process after its own warm-up.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import math
import shutil
import tempfile
from typing import Any

import anyio

from runtime.bench.measure import CpuShare, Probe, timer
from runtime.bench.model import Figure, ScenarioResult, Target
from runtime.bench.session import Session
from runtime.bench.stores import unavailable

from ..config import Config
from . import throughput
from ._common import add_ratio, check, make_row

__all__ = ["DESCRIPTION", "NAME", "dbos_job", "missing", "run"]

NAME = "dbos"
DESCRIPTION = "the same trivial async workflow on DBOS Transact (SQLite) and on flowactor"
JOB = "benchmarks.scenarios.dbos_peer:dbos_job"
WORKFLOW = "bench-dbos-identity"

DBOS_FIGURES = (
    Figure("runs_per_s", "runs/s", "", ",.1f"),
    Figure("us_per_run", "µs per run", "µs", ",.0f"),
    Figure("launch_s", "start-up (excluded)", "s", ",.2f"),
    Figure("cold_run_ms", "first run (excluded)", "ms", ",.1f"),
    Figure("peak_rss_mb", "peak RSS", "MB", ",.0f"),
)
FLOWACTOR_FIGURES = (
    Figure("runs_per_s", "runs/s"),
    Figure("us_per_run", "µs per run", "µs", ",.1f"),
    Figure("vs_dbos", "runs/s vs DBOS", "x", ",.1f"),
    Figure("peak_rss_mb", "peak RSS", "MB", ",.0f"),
)
TARGET = Target("vs_dbos", ">=", 30.0, ">= 30x DBOS's runs/s")


def missing() -> str | None:
    """None if DBOS can be measured here, else why not."""
    if importlib.util.find_spec("dbos") is None:
        return "dbos is not installed (pip install dbos to compare)"
    return None


# -- DBOS, in its measurement process ---------------------------------------------------------
def dbos_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round on DBOS: start-up and a cold run (excluded), warm-up, then N concurrent."""
    n, warmup, threads = int(params["n"]), int(params["warmup"]), int(params["threads"])
    folder = tempfile.mkdtemp(prefix="dbos-", dir=str(params["workdir"]))
    DBOS = importlib.import_module("dbos").DBOS

    async def identity(i: int) -> int:
        return i

    workflow = DBOS.workflow(name=WORKFLOW)(identity)
    config = {
        "name": "flowactor-bench",
        "system_database_url": f"sqlite:///{folder}/dbos.sqlite",
        "log_level": "WARNING",
        "max_executor_threads": threads,
    }
    figures: dict[str, Any] = {"n": n, "expected": n, "threads": threads}
    try:
        with probe.sampling() as sampler:
            probe.start(1, "start-up")
            started = timer()
            DBOS(config=config)
            DBOS.launch()
            figures["launch_s"] = timer() - started
            anyio.run(_dbos_batches, workflow, n, warmup, probe, figures, backend="asyncio")
            probe.start(n, "verify")
            done = DBOS.list_workflows(
                status="SUCCESS", name=WORKFLOW, load_input=False, load_output=False
            )
        figures.update(sampler.figures())
    finally:
        DBOS.destroy(destroy_registry=True)
        shutil.rmtree(folder, ignore_errors=True)
    figures["completed"] = len(done) - 1 - warmup  # the cold run and the warm-up batch aside
    figures["ok"] = figures["completed"] == n and figures["returned"] == n
    return figures


async def _dbos_batches(
    workflow: Any, n: int, warmup: int, probe: Probe, figures: dict[str, Any]
) -> None:
    started = timer()
    await workflow(-1)
    figures["cold_run_ms"] = (timer() - started) * 1e3
    probe.start(warmup, "warm-up")
    await _concurrently(workflow, warmup, probe)
    cpu = CpuShare()
    probe.start(n, "run")
    started = timer()
    with cpu.measuring():
        returned = await _concurrently(workflow, n, probe)
        wall = timer() - started
    figures.update(
        wall_s=wall,
        runs_per_s=n / wall if wall > 0 else math.nan,
        us_per_run=wall / n * 1e6,
        returned=returned,
        cpu_foreign_share=cpu.foreign_share,
    )


async def _concurrently(workflow: Any, n: int, probe: Probe) -> int:
    """Await `workflow(i)` for i in range(n), each in its own task; how many returned i."""
    returned = 0

    async def one(i: int) -> None:
        nonlocal returned
        try:
            value = await workflow(i)
        except Exception:
            value = None
        returned += value == i  # after the await: no lost update
        probe.done += 1

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return returned


# -- in the harness ---------------------------------------------------------------------------
def run(session: Session[Config]) -> ScenarioResult:
    """Measure DBOS and flowactor on the same N, in separate processes; check the ratio."""
    config = session.config
    result = ScenarioResult(NAME, DESCRIPTION, chart="runs_per_s")
    problem = missing() or unavailable("sqlite")
    if problem is not None:
        result.skipped = problem
        return result
    n = min(config.dbos_runs, 20) if config.smoke else config.dbos_runs
    threads = config.dbos_threads
    version = importlib.metadata.version("dbos")
    settings = f"max_executor_threads={threads}"
    result.notes.append(
        f"N={n:,} (--dbos-runs); DBOS {version} in-process, SQLite system database in a fresh "
        f"directory per round, {settings} (--dbos-threads), log_level=WARNING, else DBOS's "
        "defaults; flowactor on SQLite, N tasks each awaiting the flow"
    )
    params = {"n": n, "warmup": min(n, 20), "threads": threads}
    measured = session.measure(JOB, params, label=f"DBOS · SQLite · N={n:,}")
    dbos_row = make_row(
        NAME, f"DBOS {version} · SQLite · {settings}", params, measured, DBOS_FIGURES
    )
    fa_row = throughput.measure_flowactor(session, n, "sqlite", "asyncio", shape="direct")
    fa_row.scenario, fa_row.figures = NAME, FLOWACTOR_FIGURES
    add_ratio(fa_row, "vs_dbos", fa_row.rounds, dbos_row.rounds, "runs_per_s")
    fa_row.errors.extend(f"DBOS: {e}" for e in dbos_row.errors)
    check([fa_row], TARGET)
    result.rows.extend([dbos_row, fa_row])
    return result
