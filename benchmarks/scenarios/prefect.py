"""`prefect`: the same trivial async and sync flows on Prefect and on flowactor, and the ratio.

Only when `prefect` is importable. Prefect runs as the peer benchmarks ran it: a fresh
`PREFECT_HOME` per process, its ephemeral API server (a subprocess, on SQLite), analytics off,
logging at WARNING. Its cold start (server spawn, migrations, first run) is timed apart and
excluded. Async flows: N called concurrently (N tasks each awaiting the flow); sync flows: N
called one after another. flowactor runs the same N the same way, on SQLite when that store is
selected (else in memory).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import tempfile
from typing import Any

import anyio

from runtime.bench import loops
from runtime.bench.measure import CpuShare, Probe, timer
from runtime.bench.model import Figure, ScenarioResult, Target
from runtime.bench.session import Session
from runtime.bench.stores import remove_sqlite, store_url

from ..config import Config
from ._common import add_ratio, check, make_row

__all__ = ["DESCRIPTION", "NAME", "flowactor_pair_job", "prefect_job", "run"]

NAME = "prefect"
DESCRIPTION = "the same trivial flows on Prefect (ephemeral server, SQLite) and on flowactor"
PREFECT_JOB = "benchmarks.scenarios.prefect:prefect_job"
FLOWACTOR_JOB = "benchmarks.scenarios.prefect:flowactor_pair_job"

PREFECT_FIGURES = (
    Figure("async_runs_per_s", "async, concurrent", "runs/s", ",.2f"),
    Figure("sync_runs_per_s", "sync, one by one", "runs/s", ",.2f"),
    Figure("cold_start_s", "cold start (excluded)", "s", ",.1f"),
    Figure("peak_rss_mb", "client peak RSS", "MB", ",.0f"),
)
FLOWACTOR_FIGURES = (
    Figure("async_runs_per_s", "async, concurrent", "runs/s", ",.0f"),
    Figure("sync_runs_per_s", "sync, one by one", "runs/s", ",.0f"),
    Figure("async_vs_prefect", "async vs Prefect", "x", ",.0f"),
    Figure("sync_vs_prefect", "sync vs Prefect", "x", ",.0f"),
)
TARGETS = (
    Target("async_vs_prefect", ">=", 100.0, ">= 100x Prefect's async throughput"),
    Target("sync_vs_prefect", ">=", 100.0, ">= 100x Prefect's sync throughput"),
)


def missing() -> str | None:
    """None if Prefect can be measured here, else why not."""
    if importlib.util.find_spec("prefect") is None:
        return "prefect is not installed (pip install prefect to compare)"
    return None


# -- Prefect, in its measurement process ------------------------------------------------------
def _prefect_environment(workdir: str) -> str:
    """Settings as in the peer benchmarks; must run before prefect is imported."""
    for key in [k for k in os.environ if k.startswith("PREFECT_")]:
        del os.environ[key]
    home = tempfile.mkdtemp(prefix="prefect-home-", dir=workdir)
    os.environ.update(
        PREFECT_HOME=home,
        PREFECT_SERVER_EPHEMERAL_ENABLED="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    return home


def prefect_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round on Prefect: cold start, N async flows at once, N sync flows one by one."""
    n = int(params["n"])
    _prefect_environment(str(params["workdir"]))
    prefect = importlib.import_module("prefect")  # after the environment is set

    async def identity_async(i: int) -> int:
        return i

    def identity(i: int) -> int:
        return i

    async_flow = prefect.flow(name="bench-prefect-async")(identity_async)
    sync_flow = prefect.flow(name="bench-prefect-sync")(identity)

    figures: dict[str, Any] = {"n": n, "expected": n}
    with probe.sampling() as sampler:

        async def async_part() -> None:
            probe.start(1, "cold start")
            started = timer()
            await async_flow(-1)
            figures["cold_start_s"] = timer() - started
            values: dict[int, Any] = {}

            async def one(i: int) -> None:
                try:
                    values[i] = await async_flow(i)
                except Exception as exc:
                    values[i] = exc
                probe.done += 1

            probe.start(n, "run")
            started = timer()
            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(one, i)
            figures["async_wall_s"] = timer() - started
            figures["async_returned"] = sum(values.get(i) == i for i in range(n))

        anyio.run(async_part, backend="asyncio")
        sync_flow(-1)  # warm-up
        probe.start(n, "sync")
        started = timer()
        returned = 0
        for i in range(n):
            with contextlib.suppress(Exception):  # a failed call is counted as not returned
                returned += sync_flow(i) == i
            probe.done += 1
        figures["sync_wall_s"] = timer() - started
        figures["sync_returned"] = returned
        completed = anyio.run(_prefect_completed, backend="asyncio")
    figures["async_completed"] = completed["bench-prefect-async"] - 1
    figures["sync_completed"] = completed["bench-prefect-sync"] - 1
    figures["completed"] = figures["async_completed"] + figures["sync_completed"]
    figures["expected"] = 2 * n
    figures["ok"] = figures["completed"] == 2 * n and (
        figures["async_returned"] == figures["sync_returned"] == n
    )
    _rates(figures, n)
    figures.update(sampler.figures())
    return figures


async def _prefect_completed() -> dict[str, int]:
    """COMPLETED flow runs per flow name, as Prefect's own API counts them."""
    client_module = importlib.import_module("prefect.client.orchestration")
    f = importlib.import_module("prefect.client.schemas.filters")
    completed = importlib.import_module("prefect.client.schemas.objects").StateType.COMPLETED
    counts: dict[str, int] = {}
    async with client_module.get_client() as client:
        for name in ("bench-prefect-async", "bench-prefect-sync"):
            counts[name] = int(
                await client.count_flow_runs(
                    flow_filter=f.FlowFilter(name=f.FlowFilterName(any_=[name])),
                    flow_run_filter=f.FlowRunFilter(
                        state=f.FlowRunFilterState(type=f.FlowRunFilterStateType(any_=[completed]))
                    ),
                )
            )
    return counts


def _rates(figures: dict[str, Any], n: int) -> None:
    for kind in ("async", "sync"):
        wall = figures[f"{kind}_wall_s"]
        figures[f"{kind}_runs_per_s"] = n / wall if wall > 0 else math.nan


# -- flowactor, in its measurement process ----------------------------------------------------
def flowactor_pair_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round on flowactor, shaped as the Prefect round (without its cold start)."""
    return loops.run(_flowactor_main, params, probe, backend=params["backend"])


async def _flowactor_main(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    from runtime import Runtime, StateType

    from ..flows import trivial, trivial_sync
    from ._shapes import run_batch

    n, store, workdir = int(params["n"]), str(params["store"]), str(params["workdir"])
    figures: dict[str, Any] = {"n": n}
    url = store_url(store, workdir, "prefect-pair")
    try:
        with probe.sampling() as sampler:
            warm_url = store_url(store, workdir, "prefect-pair-warmup")
            await run_batch(warm_url, trivial, 20, probe, shape="direct")  # warm-up, excluded
            remove_sqlite(warm_url)
            # N tasks each awaiting the flow, as the Prefect round calls it; a fresh Runtime
            batch = await run_batch(url, trivial, n, probe, CpuShare(), shape="direct")
            remove_sqlite(url)
            figures["async_wall_s"] = batch["wall_s"]
            async with Runtime(store=url) as rt:
                await (await rt.submit(trivial_sync, -1)).wait()  # warm-up
                probe.start(n, "sync")
                started = timer()
                returned = 0
                for i in range(n):
                    value = await (await rt.submit(trivial_sync, i)).result()
                    returned += value == i
                    probe.done += 1
                figures["sync_wall_s"] = timer() - started
                sync_completed = len(await rt.list_flow_runs(state=StateType.COMPLETED)) - 1
    finally:
        remove_sqlite(url)
    figures.update(
        completed=batch["completed"] + sync_completed,
        expected=2 * n,
        ok=batch["ok"] and sync_completed == n and returned == n,
        **sampler.figures(),
    )
    _rates(figures, n)
    return figures


# -- in the harness ---------------------------------------------------------------------------
def run(session: Session[Config]) -> ScenarioResult:
    """Measure Prefect and flowactor on the same N, in separate processes; check the ratios."""
    config = session.config
    result = ScenarioResult(NAME, DESCRIPTION, chart="async_runs_per_s")
    problem = missing()
    if problem is not None:
        result.skipped = problem
        return result
    n = 2 if config.smoke else config.prefect_runs
    store = "sqlite" if "sqlite" in config.stores else "memory"
    result.notes.append(
        f"N={n} (--prefect-runs); Prefect on its ephemeral SQLite server, flowactor on {store}; "
        "Prefect's peak RSS is the client's only (its API server is a separate process)"
    )
    params = {"n": n}
    rounds = 1 if config.smoke else config.rounds
    prefect = session.measure(PREFECT_JOB, params, label=f"Prefect · N={n}", rounds=rounds)
    fa_params = {"n": n, "store": store, "backend": "asyncio"}
    flowactor = session.measure(
        FLOWACTOR_JOB, fa_params, label=f"flowactor vs Prefect · {store} · N={n}", rounds=rounds
    )
    prefect_row = make_row(NAME, "Prefect · ephemeral server", params, prefect, PREFECT_FIGURES)
    fa_row = make_row(
        NAME, f"flowactor · {store} · asyncio", fa_params, flowactor, FLOWACTOR_FIGURES
    )
    for kind in ("async", "sync"):
        add_ratio(
            fa_row, f"{kind}_vs_prefect", fa_row.rounds, prefect_row.rounds, f"{kind}_runs_per_s"
        )
    fa_row.errors.extend(f"Prefect: {e}" for e in prefect_row.errors)
    for target in TARGETS:
        check([fa_row], target)
    result.rows.extend([prefect_row, fa_row])
    return result
