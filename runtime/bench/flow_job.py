"""One measured round of a user's flow, run in its measurement process.

`concurrency` worker tasks share the N runs: each submits a run, waits for its final state,
then submits the next, so at most `concurrency` runs are in flight at once. Latency is a run's
time from `submit` to its final state. A warm-up batch in its own Runtime and store comes
first (excluded). With `cancel_after`, once that many seconds have passed every run still in
flight is cancelled at once (and no more are submitted): the cancel figures run from that
moment to each `handle.cancel()` returning (the run's Cancelled state is persisted), and to
every submitted run being final. Afterwards the store is read back: every run's final state
must be there.
"""

from __future__ import annotations

import collections
import gc
import math
import uuid
from collections.abc import Mapping
from typing import Any

import anyio

from .. import FlowRunHandle, Runtime
from ..flows import Flow
from ..loading import load_flow_from_entrypoint
from ..states import FINAL_STATES, StateType
from . import loops
from .measure import MB, CpuShare, Probe, current_rss, percentile, reset_peak_rss, ru_maxrss, timer
from .stores import fresh_url, remove_sqlite

__all__ = ["FINAL_ORDER", "STATE_KEYS", "flow_job", "run_round"]

FINAL_ORDER = (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)
"""The final states, in the order they are reported."""
STATE_KEYS: dict[StateType, str] = {t: t.name.lower() for t in StateType}
"""The key each final state's count has in a round's figures ("completed", "failed", ...)."""


def flow_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """The job a measurement process runs: load `params["target"]`, measure one round."""
    flow = load_flow_from_entrypoint(str(params["target"]))
    return run_round(flow, params, probe)


def run_round(flow: Flow[..., Any], params: Mapping[str, Any], probe: Probe) -> dict[str, Any]:
    """One round of `flow` on `params["backend"]`: a warm-up, then N runs measured."""
    return loops.run(_round, flow, params, probe, backend=str(params["backend"]))


class _Batch:
    """What one batch of runs saw: per-run latencies, final states and the cancel's timings."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.states: collections.Counter[StateType] = collections.Counter()
        self.ids: list[uuid.UUID] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.wall_s = math.nan
        self.cancels: list[float] = []  # seconds from the cancel to each cancel() returning
        self.cancel_total_s = math.nan  # from the cancel until every submitted run was final
        self.cancelled_by_cancel = 0  # cancel() calls that ended their run Cancelled


async def _batch(
    rt: Runtime,
    flow: Flow[..., Any],
    parameters: dict[str, Any],
    n: int,
    concurrency: int,
    cancel_after: float | None,
    probe: Probe,
) -> _Batch:
    """Run N runs of `flow`, `concurrency` at a time; cancel what runs after `cancel_after`."""
    seen = _Batch()
    in_flight: dict[uuid.UUID, FlowRunHandle] = {}
    submitted = 0
    stopping = False
    cancel_started = math.nan
    finished = anyio.Event()

    async def cancel(handle: FlowRunHandle) -> None:
        ended_cancelled = await handle.cancel()  # returns once the final state is written
        seen.cancels.append(timer() - cancel_started)
        seen.cancelled_by_cancel += ended_cancelled

    async def worker() -> None:
        nonlocal submitted
        while submitted < n and not stopping:
            submitted += 1  # before the await: no other worker takes the same slot
            started = timer()
            handle = await rt.submit(flow, **parameters)
            seen.ids.append(handle.id)
            if stopping:  # submitted while the cancel began: it is cancelled too
                await cancel(handle)
            in_flight[handle.id] = handle
            seen.in_flight += 1
            seen.peak_in_flight = max(seen.peak_in_flight, seen.in_flight)
            state = await handle.wait()
            seen.latencies.append(timer() - started)
            del in_flight[handle.id]
            seen.in_flight -= 1
            seen.states[state.type] += 1
            probe.done += 1

    async def workers() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(max(1, min(concurrency, n))):
                tg.start_soon(worker)
        finished.set()

    started = timer()
    async with anyio.create_task_group() as tg:
        tg.start_soon(workers)
        if cancel_after is not None:
            with anyio.move_on_after(cancel_after):
                await finished.wait()
            if not finished.is_set():
                stopping = True
                cancel_started = timer()
                async with anyio.create_task_group() as cancels:
                    for handle in list(in_flight.values()):
                        cancels.start_soon(cancel, handle)
                await finished.wait()  # runs submitted meanwhile were cancelled by their worker
                seen.cancel_total_s = timer() - cancel_started
    seen.wall_s = timer() - started
    return seen


async def _stored_states(rt: Runtime, ids: list[uuid.UUID]) -> collections.Counter[StateType]:
    """How many of the runs `ids` the store holds in each final state."""
    wanted = set(ids)
    runs = await rt.list_flow_runs(state=FINAL_STATES)
    return collections.Counter(
        run.state.type for run in runs if run.id in wanted and run.state is not None
    )


async def _round(flow: Flow[..., Any], params: Mapping[str, Any], probe: Probe) -> dict[str, Any]:
    n, concurrency = int(params["n"]), int(params["concurrency"])
    warmup = int(params.get("warmup", 0))
    parameters = dict(params.get("parameters") or {})
    cancel_after = params.get("cancel_after")
    cancel_after = None if cancel_after is None else float(cancel_after)
    store, workdir = str(params["store"]), str(params["workdir"])
    reuse = bool(params.get("reuse_store", False))
    if warmup:
        url = fresh_url(store, workdir, "warmup", reuse=reuse)
        try:
            async with Runtime(store=url) as rt:
                probe.start(warmup, "warm-up")
                await _batch(rt, flow, parameters, warmup, concurrency, cancel_after, probe)
        finally:
            if not reuse:
                remove_sqlite(url)
    url = fresh_url(store, workdir, "run", reuse=reuse)
    cpu = CpuShare()
    try:
        async with Runtime(store=url) as rt:
            gc.collect()
            reset_peak_rss()  # the peak is this batch's own, not the warm-up's
            baseline = current_rss()
            probe.start(n, "run")
            with probe.sampling() as sampler, cpu.measuring():
                seen = await _batch(rt, flow, parameters, n, concurrency, cancel_after, probe)
                peak = sampler.peak
            probe.start(n, "verify")
            stored = await _stored_states(rt, seen.ids)
    finally:
        if not reuse:
            remove_sqlite(url)
    return _figures(n, concurrency, cancel_after, seen, stored, baseline, peak, cpu)


def _figures(
    n: int,
    concurrency: int,
    cancel_after: float | None,
    seen: _Batch,
    stored: collections.Counter[StateType],
    baseline: int,
    peak: int,
    cpu: CpuShare,
) -> dict[str, Any]:
    """A round's figures: throughput, latency, final states, memory and the cancel's timings."""
    millis = [t * 1e3 for t in seen.latencies]
    ended = sum(seen.states.values())
    figures: dict[str, Any] = {
        "n": n,
        "concurrency": concurrency,
        "submitted": len(seen.ids),
        "not_submitted": n - len(seen.ids),
        "wall_s": seen.wall_s,
        "runs_per_s": ended / seen.wall_s if seen.wall_s > 0 else math.nan,
        "us_per_run": seen.wall_s / ended * 1e6 if ended else math.nan,
        "latency_p50_ms": percentile(millis, 50),
        "latency_p90_ms": percentile(millis, 90),
        "latency_p99_ms": percentile(millis, 99),
        "latency_max_ms": max(millis, default=math.nan),
        "latency_mean_ms": sum(millis) / len(millis) if millis else math.nan,
        "persisted": sum(stored.values()),
        "peak_in_flight": seen.peak_in_flight,
        "baseline_rss_mb": baseline / MB,
        "peak_rss_mb": peak / MB,
        "kib_per_run": (peak - baseline) / max(seen.peak_in_flight, 1) / 1024,
        "ru_maxrss_mb": ru_maxrss() / MB,
        "cpu_foreign_share": cpu.foreign_share,
        "expected": n,
    }
    for state_type in FINAL_ORDER:
        figures[STATE_KEYS[state_type]] = seen.states[state_type]
        figures[f"persisted_{STATE_KEYS[state_type]}"] = stored[state_type]
    if cancel_after is not None:
        cancel_ms = [t * 1e3 for t in seen.cancels]
        figures.update(
            cancel_requested=len(seen.cancels),
            cancel_cancelled=seen.cancelled_by_cancel,
            cancel_total_ms=seen.cancel_total_s * 1e3,
            cancel_p50_ms=percentile(cancel_ms, 50),
            cancel_p99_ms=percentile(cancel_ms, 99),
            cancel_max_ms=max(cancel_ms, default=math.nan),
        )
    expected = {StateType.COMPLETED} | (
        {StateType.CANCELLED} if cancel_after is not None else set()
    )
    as_expected = all(t in expected for t, count in seen.states.items() if count)
    figures["ok"] = (
        as_expected
        and ended == len(seen.ids)
        and stored == +seen.states  # the store holds every run's final state
        and (cancel_after is not None or ended == n)
    )
    return figures
