"""`memory`: RSS per concurrent run, with N runs parked in `anyio.sleep` at once.

flowactor parks N runs of a flow sleeping in `anyio.sleep`; the floor parks N plain anyio
tasks that made the same writes (Pending, Running) and sleep the same way. Each in its own
process: RSS is read before spawning (after imports and a warm-up) and once all N are parked
(after a GC), plus the peak (sampling and `ru_maxrss`). The parked runs are then cancelled.
"""

from __future__ import annotations

import gc
import time
import uuid
from typing import Any

import anyio

from runtime import Runtime, StateType
from runtime.bench import loops
from runtime.bench.measure import MB, Probe, current_rss, ru_maxrss, timer
from runtime.bench.model import Figure, ScenarioResult, Target
from runtime.bench.session import Session
from runtime.bench.stores import remove_sqlite, sqlite_path, store_url

from ..config import Config
from ..flows import gate, parked
from ._common import add_ratio, check, make_row
from .floor import GroupCommit

__all__ = ["DESCRIPTION", "NAME", "floor_parked_job", "flowactor_parked_job", "run"]

NAME = "memory"
DESCRIPTION = "RSS per concurrent run, N runs parked in anyio.sleep (flowactor vs floor)"
SIZES = (100_000,)
HOLD_S = 3600.0  # parked "for ever": the job cancels them once measured
FLOWACTOR_JOB = "benchmarks.scenarios.memory:flowactor_parked_job"
FLOOR_JOB = "benchmarks.scenarios.memory:floor_parked_job"

FIGURES = (
    Figure("kib_per_run", "per parked run", "KiB", ",.2f"),
    Figure("kib_above_floor", "above the floor's", "KiB", ",.2f"),
    Figure("parked_rss_mb", "RSS all parked", "MB", ",.0f"),
    Figure("peak_rss_mb", "peak RSS", "MB", ",.0f"),
    Figure("spawn_s", "time to park N", "s", ",.2f"),
)
FLOOR_FIGURES = tuple(f for f in FIGURES if f.key != "kib_above_floor")
TARGET = Target("kib_above_floor", "<=", 5.0, "<= 5 KiB per parked run above the floor's")


def _figures(n: int, baseline: int, parked_rss: int, peak: int, spawn_s: float) -> dict[str, Any]:
    return {
        "n": n,
        "baseline_rss_mb": baseline / MB,
        "parked_rss_mb": parked_rss / MB,
        "peak_rss_mb": peak / MB,
        "kib_per_run": (parked_rss - baseline) / n / 1024,
        "kib_per_run_peak": (peak - baseline) / n / 1024,
        "spawn_s": spawn_s,
        "expected": n,
    }


# -- flowactor, in its measurement process ----------------------------------------------------
def flowactor_parked_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round: park N flowactor runs, measure RSS, cancel them."""
    return loops.run(_flowactor_main, params, probe, backend=params["backend"])


async def _park_runs(rt: Runtime, n: int, probe: Probe) -> float:
    arrived = gate(n)
    before = rt.active_runs

    async def submit() -> None:
        await rt.submit(parked, HOLD_S)
        probe.done += 1

    started = timer()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(submit)
    await arrived.wait(lambda: rt.active_runs - before)
    return timer() - started


async def _flowactor_main(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    n, warmup = int(params["n"]), int(params.get("warmup", 0))
    store, workdir = str(params["store"]), str(params["workdir"])
    if warmup:
        url = store_url(store, workdir, "warmup")
        async with Runtime(store=url) as rt:
            probe.start(warmup, "warm-up")
            await _park_runs(rt, warmup, probe)
            await rt.shutdown(cancel=True)
        remove_sqlite(url)
    url = store_url(store, workdir, "memory")
    try:
        with probe.sampling() as sampler:
            async with Runtime(store=url) as rt:
                gc.collect()
                baseline = current_rss()
                probe.start(n, "run")
                spawn_s = await _park_runs(rt, n, probe)
                gc.collect()
                parked_rss = current_rss()
                running = len(await rt.list_flow_runs(state=StateType.RUNNING))
                probe.start(n, "teardown")
                await rt.shutdown(cancel=True)
                cancelled = len(await rt.list_flow_runs(state=StateType.CANCELLED))
    finally:
        remove_sqlite(url)
    figures = _figures(n, baseline, parked_rss, sampler.peak, spawn_s)
    figures.update(completed=running, cancelled=cancelled, ok=running == n and cancelled == n)
    figures["ru_maxrss_mb"] = ru_maxrss() / MB
    return figures


# -- the floor, in its measurement process ----------------------------------------------------
def floor_parked_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round: park N plain anyio tasks after their 2 writes, measure RSS, cancel them."""
    return loops.run(_floor_main, params, probe, backend=params["backend"])


async def _park_tasks(n: int, probe: Probe, log: GroupCommit | None) -> tuple[float, int, int]:
    """Park n tasks; return (spawn seconds, RSS once parked, tasks parked)."""
    writes: list[tuple[str, str, float]] = []
    arrived = gate(n)

    async def one() -> None:
        run_id = str(uuid.uuid4())
        for state in ("PENDING", "RUNNING"):
            if log is None:
                writes.append((run_id, state, time.time()))
            else:
                await log.write((run_id, state, time.time()))
        probe.done += 1
        arrived.arrive()
        await anyio.sleep(HOLD_S)

    async with anyio.create_task_group() as tg:
        if log is not None:
            tg.start_soon(log.run)
        started = timer()
        for _ in range(n):
            tg.start_soon(one)
        await arrived.all_in.wait()
        spawn_s = timer() - started
        gc.collect()
        parked_rss = current_rss()
        tg.cancel_scope.cancel()
    return spawn_s, parked_rss, arrived.arrived


async def _floor_main(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    n, warmup = int(params["n"]), int(params.get("warmup", 0))
    store, workdir = str(params["store"]), str(params["workdir"])
    url = store_url(store, workdir, "floor-memory")
    path = sqlite_path(url)
    log = GroupCommit(str(path)) if path is not None else None
    try:
        if warmup:
            probe.start(warmup, "warm-up")
            await _park_tasks(warmup, probe, log)
        with probe.sampling() as sampler:
            gc.collect()
            baseline = current_rss()
            probe.start(n, "run")
            spawn_s, parked_rss, count = await _park_tasks(n, probe, log)
    finally:
        if log is not None:
            log.close()
        remove_sqlite(url)
    figures = _figures(n, baseline, parked_rss, sampler.peak, spawn_s)
    figures.update(completed=count, ok=count == n)
    figures["ru_maxrss_mb"] = ru_maxrss() / MB
    return figures


# -- in the harness ---------------------------------------------------------------------------
def run(session: Session[Config]) -> ScenarioResult:
    """Park N runs (flowactor) and N tasks (floor) in separate processes; compare per run."""
    config = session.config
    backend = config.backend
    result = ScenarioResult(NAME, DESCRIPTION, chart="kib_per_run")
    for store in config.stores:
        for n in config.sizes(SIZES, smoke=(500,)):
            params = {"n": n, "store": store, "backend": backend, "warmup": min(n, 200)}
            tag = f"{store} · {backend}"
            fa = session.measure(FLOWACTOR_JOB, params, label=f"memory flowactor · {tag} · N={n:,}")
            fl = session.measure(FLOOR_JOB, params, label=f"memory floor · {tag} · N={n:,}")
            fa_row = make_row(NAME, f"flowactor · {tag}", params, fa, FIGURES)
            fl_row = make_row(NAME, f"floor · {tag}", params, fl, FLOOR_FIGURES)
            for round_, other in zip(fa_row.rounds, fl_row.rounds, strict=False):
                round_["floor_kib_per_run"] = other["kib_per_run"]
                round_["kib_above_floor"] = round_["kib_per_run"] - other["kib_per_run"]
            fa_row.errors.extend(f"floor: {e}" for e in fl_row.errors)
            add_ratio(fa_row, "ratio_to_floor", fa_row.rounds, fl_row.rounds, "kib_per_run")
            check([fa_row], TARGET)
            result.rows.extend([fa_row, fl_row])
    return result
