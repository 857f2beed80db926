"""How a batch of N trivial runs is fed to flowactor: the shapes the scenarios measure.

- `submit`: one loop awaits `rt.submit(flow, i)` for each i in range(N), then awaits every
  result (submitting is a checkpoint: runs already submitted progress meanwhile);
- `submit_many`: one loop awaits `rt.submit_many(flow, range(N))`, then awaits every result;
- `direct`: N concurrent tasks, each awaiting `flow(i)` inside the Runtime (what a web app's
  request handlers do);
- `shared`: K tasks (`submitters`) share the N submits, each submitting its share in a loop,
  then every result is awaited.

Wall time runs from the first submit (the first task started, for `direct`) until the last
result; the Runtime's start-up and close are outside it. Afterwards the store must hold N runs
Completed, and every result must be its input. Runs in the measurement process.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from runtime import Flow, FlowRunHandle, Runtime, StateType
from runtime.bench import loops
from runtime.bench.measure import CpuShare, Probe, timer
from runtime.bench.stores import remove_sqlite, store_url

from ..flows import trivial, trivial_sync

__all__ = ["SHAPES", "batch_job", "label", "run_batch", "shapes_job"]

SHAPES = ("submit", "submit_many", "direct", "shared")

Feed = Callable[[Runtime, Flow[..., Any], int, Probe, int], Awaitable[list[Any]]]


def label(shape: str, submitters: int = 1) -> str:
    """How a row names its shape (the case column of the table)."""
    return {
        "submit": "one loop: await rt.submit",
        "submit_many": "one loop: await rt.submit_many",
        "direct": "N tasks: await flow(i)",
        "shared": f"{submitters} tasks share the submits",
    }[shape]


async def _results(handles: list[FlowRunHandle], probe: Probe) -> list[Any]:
    """Every run's result, in order (None for a run that raised)."""
    values: list[Any] = []
    for handle in handles:
        try:
            values.append(await handle.result())
        except Exception:
            values.append(None)
        probe.done += 1
    return values


async def _submit(rt: Runtime, flow: Flow[..., Any], n: int, probe: Probe, _: int) -> list[Any]:
    handles = [await rt.submit(flow, i) for i in range(n)]  # one submit at a time
    return await _results(handles, probe)


async def _submit_many(
    rt: Runtime, flow: Flow[..., Any], n: int, probe: Probe, _: int
) -> list[Any]:
    handles: list[FlowRunHandle] = await rt.submit_many(flow, range(n))
    return await _results(handles, probe)


async def _direct(rt: Runtime, flow: Flow[..., Any], n: int, probe: Probe, _: int) -> list[Any]:
    values: list[Any] = [None] * n

    async def call(i: int) -> None:
        with contextlib.suppress(Exception):  # a failed run counts as a wrong result
            values[i] = await flow(i)
        probe.done += 1

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(call, i)
    return values


async def _shared(
    rt: Runtime, flow: Flow[..., Any], n: int, probe: Probe, submitters: int
) -> list[Any]:
    handles: list[FlowRunHandle | None] = [None] * n

    async def submit_share(part: int, step: int) -> None:
        for i in range(part, n, step):
            handles[i] = await rt.submit(flow, i)

    step = max(1, min(submitters, n))
    async with anyio.create_task_group() as tg:
        for part in range(step):
            tg.start_soon(submit_share, part, step)
    submitted = [h for h in handles if h is not None]
    assert len(submitted) == n  # every submitter finished without raising
    return await _results(submitted, probe)


_FEEDS: dict[str, Feed] = {
    "submit": _submit,
    "submit_many": _submit_many,
    "direct": _direct,
    "shared": _shared,
}


async def run_batch(
    url: str,
    flow: Flow[..., Any],
    n: int,
    probe: Probe,
    cpu: CpuShare | None = None,
    *,
    shape: str = "submit",
    submitters: int = 1,
) -> dict[str, Any]:
    """Run `n` runs of `flow` in a fresh Runtime on `url`, fed in `shape`; verify the store."""
    feed = _FEEDS[shape]
    async with Runtime(store=url) as rt:
        probe.start(n, "run" if cpu is not None else "warm-up")
        started = timer()
        with cpu.measuring() if cpu is not None else contextlib.nullcontext():
            values = await feed(rt, flow, n, probe, submitters)
            wall = timer() - started
        probe.start(n, "verify")
        completed = len(await rt.list_flow_runs(state=StateType.COMPLETED))
        closing = timer()
    close_s = timer() - closing
    wrong = sum(1 for i, value in enumerate(values) if value != i)
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
        "submitters": submitters if shape == "shared" else 1,
    }


def _flow(params: dict[str, Any]) -> Flow[..., Any]:
    return trivial_sync if params.get("flow") == "sync" else trivial


async def _measure(params: dict[str, Any], shape: str, probe: Probe) -> dict[str, Any]:
    """A warm-up batch and then N runs measured, each in a fresh Runtime and store."""
    n, store, workdir = int(params["n"]), str(params["store"]), str(params["workdir"])
    flow, submitters = _flow(params), int(params.get("submitters", 1))
    warmup = int(params.get("warmup", 0))
    if warmup:
        url = store_url(store, workdir, "warmup")
        await run_batch(url, flow, warmup, probe, shape=shape, submitters=submitters)
        remove_sqlite(url)
    gc.collect()
    url = store_url(store, workdir, "run")
    cpu = CpuShare()
    try:
        with probe.sampling() as sampler:
            figures = await run_batch(url, flow, n, probe, cpu, shape=shape, submitters=submitters)
    finally:
        remove_sqlite(url)
    figures.update(sampler.figures())
    figures["cpu_foreign_share"] = cpu.foreign_share
    return figures


def batch_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round of one shape (`params["shape"]`): a warm-up batch, then N runs measured."""
    return loops.run(_batch_main, params, probe, backend=params["backend"])


async def _batch_main(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    return await _measure(params, str(params.get("shape", "submit")), probe)


def shapes_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round of several shapes in one process, one after another (`params["shapes"]`).

    So that their ratio compares figures taken under the same load. Each shape's figures come
    back prefixed with its name (`direct_us_per_run`); `ok` when every shape's is.
    """
    return loops.run(_shapes_main, params, probe, backend=params["backend"])


async def _shapes_main(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    shapes = [str(s) for s in params["shapes"]]
    merged: dict[str, Any] = {"n": int(params["n"]), "expected": int(params["n"]), "ok": True}
    for shape in shapes:
        figures = await _measure(params, shape, probe)
        merged["ok"] = merged["ok"] and bool(figures.pop("ok"))
        merged.update({f"{shape}_{key}": value for key, value in figures.items()})
    return merged
