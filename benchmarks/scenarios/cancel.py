"""`cancel`: N running runs (parked in `anyio.sleep_forever`) cancelled at once.

Once all N runs are Running and parked, one task per run calls `await handle.cancel()`, which
returns when that run's Cancelled state is written. Reported: the time until all are Cancelled
and persisted, and each run's time from the start of the cancel to its own return (p50 / p99).
"""

from __future__ import annotations

import contextlib
import gc
import math
from typing import Any

import anyio

from runtime import FlowRunHandle, Runtime, StateType
from runtime.bench import loops
from runtime.bench.measure import CpuShare, Probe, percentile, timer
from runtime.bench.model import Figure, ScenarioResult, Target
from runtime.bench.session import Session
from runtime.bench.stores import remove_sqlite, store_url

from ..config import Config
from ..flows import gate, parked_forever
from ._common import check, make_row

__all__ = ["DESCRIPTION", "NAME", "cancel_job", "run"]

NAME = "cancel"
DESCRIPTION = "N running runs cancelled at once: until all Cancelled and persisted"
SIZES = (10_000,)
JOB = "benchmarks.scenarios.cancel:cancel_job"

FIGURES = (
    Figure("total_ms", "all Cancelled", "ms", ",.1f"),
    Figure("p50_ms", "per run p50", "ms", ",.1f"),
    Figure("p99_ms", "per run p99", "ms", ",.1f"),
    Figure("park_s", "time to park N", "s", ",.2f"),
)
TARGET = Target(
    "total_ms", "<=", 1_000.0, "10,000 running runs all Cancelled and persisted within 1 s", 10_000
)


def cancel_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round: park N runs, cancel them all at once, time it, verify the store."""
    return loops.run(_cancel_main, params, probe, backend=params["backend"])


async def _cancel_all(rt: Runtime, n: int, probe: Probe, cpu: CpuShare | None) -> dict[str, Any]:
    handles: list[FlowRunHandle] = []
    arrived = gate(n)
    before = rt.active_runs

    async def submit() -> None:
        handles.append(await rt.submit(parked_forever))

    probe.start(n, "park" if cpu is not None else "warm-up")
    parking = timer()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(submit)
    await arrived.wait(lambda: rt.active_runs - before)
    park_s = timer() - parking
    gc.collect()

    latencies: list[float] = []
    cancelled = 0

    async def cancel(handle: FlowRunHandle) -> None:
        nonlocal cancelled
        ended_cancelled = await handle.cancel()
        cancelled += ended_cancelled  # after the await: no lost update
        latencies.append(timer() - started)
        probe.done += 1

    probe.start(n, "run" if cpu is not None else "warm-up")
    started = timer()
    with cpu.measuring() if cpu is not None else contextlib.nullcontext():
        async with anyio.create_task_group() as tg:
            for handle in handles:
                tg.start_soon(cancel, handle)
        total = timer() - started
    return {"total_s": total, "latencies": latencies, "cancelled": cancelled, "park_s": park_s}


async def _cancel_main(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    n, warmup = int(params["n"]), int(params.get("warmup", 0))
    store, workdir = str(params["store"]), str(params["workdir"])
    if warmup:
        url = store_url(store, workdir, "warmup")
        async with Runtime(store=url) as rt:
            await _cancel_all(rt, warmup, probe, None)
        remove_sqlite(url)
    url = store_url(store, workdir, "cancel")
    cpu = CpuShare()
    try:
        with probe.sampling() as sampler:
            async with Runtime(store=url) as rt:
                figures = await _cancel_all(rt, n, probe, cpu)
                probe.start(n, "verify")
                stored = len(await rt.list_flow_runs(state=StateType.CANCELLED))
    finally:
        remove_sqlite(url)
    millis = [t * 1e3 for t in figures["latencies"]]
    total_ms = figures["total_s"] * 1e3
    return {
        "n": n,
        "total_ms": total_ms,
        "p50_ms": percentile(millis, 50),
        "p99_ms": percentile(millis, 99),
        "max_ms": max(millis) if millis else math.nan,
        "park_s": figures["park_s"],
        "cancelled": figures["cancelled"],
        "completed": stored,
        "expected": n,
        "ok": stored == n and figures["cancelled"] == n,
        **sampler.figures(),
        "cpu_foreign_share": cpu.foreign_share,
    }


def run(session: Session[Config]) -> ScenarioResult:
    """Cancel N parked runs at once on every selected store; check the 1 s target."""
    config = session.config
    result = ScenarioResult(NAME, DESCRIPTION, chart="total_ms")
    for store in config.stores:
        rows = []
        for n in config.sizes(SIZES, smoke=(100,)):
            warmup = min(n, 20 if config.smoke else 500)
            params = {"n": n, "store": store, "backend": config.backend, "warmup": warmup}
            label = f"cancel · {store} · {config.backend} · N={n:,}"
            measured = session.measure(JOB, params, label=label)
            case = f"flowactor · {store} · {config.backend}"
            rows.append(make_row(NAME, case, params, measured, FIGURES))
        check(rows, TARGET)
        result.rows.extend(rows)
    return result
