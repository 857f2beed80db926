"""`memory`: memory per parked run, with N runs parked in `anyio.sleep` at once.

flowactor parks N runs of a flow sleeping in `anyio.sleep`; the floor parks N plain anyio
tasks that made the same writes (Pending, Running) and sleep the same way. Each in its own
process, twice: first for RSS (read before spawning, after imports and a warm-up, and once all
N are parked, after a GC; plus the peak from sampling and the kernel's mark), then, in a fresh
Runtime and store, for the Python heap with `tracemalloc` (traced memory before spawning and
once all N are parked, after a GC; tracing starts after the Runtime is open, so its fixed cost
is not counted). The parked runs are cancelled after each reading. The target is on the
tracemalloc figure, which the machine's other load and the allocator's pages do not blur.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
import uuid
from collections.abc import Callable
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
DESCRIPTION = "memory per parked run, N runs parked in anyio.sleep (flowactor vs floor)"
SIZES = (100_000,)
HOLD_S = 3600.0  # parked "for ever": the job cancels them once measured
FLOWACTOR_JOB = "benchmarks.scenarios.memory:flowactor_parked_job"
FLOOR_JOB = "benchmarks.scenarios.memory:floor_parked_job"

FIGURES = (
    Figure("traced_kib_per_run", "per parked run (tracemalloc)", "KiB", ",.2f"),
    Figure("floor_traced_kib_per_run", "floor's (tracemalloc)", "KiB", ",.2f"),
    Figure("rss_kib_per_run", "per parked run (RSS)", "KiB", ",.2f"),
    Figure("floor_rss_kib_per_run", "floor's (RSS)", "KiB", ",.2f"),
    Figure("parked_rss_mb", "RSS all parked", "MB", ",.0f"),
    Figure("peak_rss_mb", "peak RSS", "MB", ",.0f"),
    Figure("spawn_s", "time to park N", "s", ",.2f"),
)
FLOOR_FIGURES = tuple(f for f in FIGURES if not f.key.startswith("floor_"))
TARGET = Target("traced_kib_per_run", "<=", 10.0, "<= 10 KiB per parked run (tracemalloc)", 100_000)

Reading = Callable[[], int]


def _traced() -> int:
    """Bytes of Python heap traced now (tracemalloc must be tracing)."""
    return tracemalloc.get_traced_memory()[0]


def _figures(
    n: int, rss: tuple[int, int], traced: tuple[int, int], peak: int, spawn_s: float
) -> dict[str, Any]:
    """Per-run figures from (before, parked) readings of RSS and of traced memory."""
    return {
        "n": n,
        "baseline_rss_mb": rss[0] / MB,
        "parked_rss_mb": rss[1] / MB,
        "peak_rss_mb": peak / MB,
        "rss_kib_per_run": (rss[1] - rss[0]) / n / 1024,
        "rss_kib_per_run_peak": (peak - rss[0]) / n / 1024,
        "traced_kib_per_run": (traced[1] - traced[0]) / n / 1024,
        "spawn_s": spawn_s,
        "expected": n,
        "ru_maxrss_mb": ru_maxrss() / MB,
    }


# -- flowactor, in its measurement process ----------------------------------------------------
def flowactor_parked_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round: park N flowactor runs and read RSS; again, reading traced memory."""
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


async def _parked_reading(
    url: str, n: int, probe: Probe, *, traced: bool
) -> tuple[tuple[int, int], float, int, int]:
    """Park n runs in a fresh Runtime: ((before, parked) reading, spawn s, Running, Cancelled).

    The reading is RSS, or with `traced` the Python heap traced by tracemalloc (tracing from
    once the Runtime is open until the parked reading).
    """
    reading = _traced if traced else current_rss
    async with Runtime(store=url) as rt:
        gc.collect()
        if traced:
            tracemalloc.start()
        try:
            before = reading()
            probe.start(n, "traced" if traced else "run")
            spawn_s = await _park_runs(rt, n, probe)
            gc.collect()
            after = reading()
        finally:
            tracemalloc.stop()  # a no-op when not tracing
        running = len(await rt.list_flow_runs(state=StateType.RUNNING))
        probe.start(n, "teardown")
        await rt.shutdown(cancel=True)
        cancelled = len(await rt.list_flow_runs(state=StateType.CANCELLED))
    return (before, after), spawn_s, running, cancelled


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
    counts: list[int] = []
    url = store_url(store, workdir, "memory")
    try:
        with probe.sampling() as sampler:
            rss, spawn_s, *ended = await _parked_reading(url, n, probe, traced=False)
            peak = sampler.peak  # now: the traced pass below would raise the mark
        counts += ended
    finally:
        remove_sqlite(url)
    url = store_url(store, workdir, "memory-traced")
    try:
        with probe.sampling():  # progress reports during the (slower) traced pass
            traced, _, *ended = await _parked_reading(url, n, probe, traced=True)
        counts += ended
    finally:
        remove_sqlite(url)
    figures = _figures(n, rss, traced, peak, spawn_s)
    figures.update(
        completed=min(counts[0], counts[2]),
        cancelled=min(counts[1], counts[3]),
        ok=all(count == n for count in counts),
    )
    return figures


# -- the floor, in its measurement process ----------------------------------------------------
def floor_parked_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round: park N plain anyio tasks after their 2 writes, read RSS; again, traced."""
    return loops.run(_floor_main, params, probe, backend=params["backend"])


async def _park_tasks(
    n: int, probe: Probe, log: GroupCommit | None, reading: Reading
) -> tuple[float, int, int]:
    """Park n tasks; return (spawn seconds, the reading once parked, tasks parked)."""
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
        parked_reading = reading()
        tg.cancel_scope.cancel()
    return spawn_s, parked_reading, arrived.arrived


async def _floor_main(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    n, warmup = int(params["n"]), int(params.get("warmup", 0))
    store, workdir = str(params["store"]), str(params["workdir"])
    url = store_url(store, workdir, "floor-memory")
    path = sqlite_path(url)
    log = GroupCommit(str(path)) if path is not None else None
    try:
        if warmup:
            probe.start(warmup, "warm-up")
            await _park_tasks(warmup, probe, log, current_rss)
        with probe.sampling() as sampler:
            gc.collect()
            rss_before = current_rss()
            probe.start(n, "run")
            spawn_s, rss_parked, count = await _park_tasks(n, probe, log, current_rss)
            peak = sampler.peak
        with probe.sampling():
            gc.collect()
            tracemalloc.start()
            traced_before = _traced()
            probe.start(n, "traced")
            _, traced_parked, traced_count = await _park_tasks(n, probe, log, _traced)
    finally:
        tracemalloc.stop()
        if log is not None:
            log.close()
        remove_sqlite(url)
    figures = _figures(n, (rss_before, rss_parked), (traced_before, traced_parked), peak, spawn_s)
    figures.update(completed=min(count, traced_count), ok=count == traced_count == n)
    return figures


# -- in the harness ---------------------------------------------------------------------------
def run(session: Session[Config]) -> ScenarioResult:
    """Park N runs (flowactor) and N tasks (floor) in separate processes; compare per run."""
    config = session.config
    backend = config.backend
    result = ScenarioResult(NAME, DESCRIPTION, chart="traced_kib_per_run")
    for store in config.stores:
        for n in config.sizes(SIZES, smoke=(500,)):
            params = {"n": n, "store": store, "backend": backend, "warmup": min(n, 200)}
            tag = f"{store} · {backend}"
            fa = session.measure(FLOWACTOR_JOB, params, label=f"memory flowactor · {tag} · N={n:,}")
            fl = session.measure(FLOOR_JOB, params, label=f"memory floor · {tag} · N={n:,}")
            fa_row = make_row(NAME, f"flowactor · {tag}", params, fa, FIGURES)
            fl_row = make_row(NAME, f"floor · {tag}", params, fl, FLOOR_FIGURES)
            for round_, other in zip(fa_row.rounds, fl_row.rounds, strict=False):
                round_["floor_traced_kib_per_run"] = other["traced_kib_per_run"]
                round_["floor_rss_kib_per_run"] = other["rss_kib_per_run"]
            fa_row.errors.extend(f"floor: {e}" for e in fl_row.errors)
            add_ratio(fa_row, "traced_vs_floor", fa_row.rounds, fl_row.rounds, "traced_kib_per_run")
            check([fa_row], TARGET)
            result.rows.extend([fa_row, fl_row])
    return result
