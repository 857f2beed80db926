"""`floor`: the same N as plain anyio tasks making the same 3 state writes, with no actors.

Each task writes Pending, Running and Completed for its run: to a Python list for the memory
store; for SQLite with the same group-commit shape as a durable store (one writer committing
whatever is queued in one transaction, in one thread at a time, each write awaited until its
batch is committed). The ratio flowactor / floor (wall time, round i against round i) is
measured in the same invocation, flowactor in the shape `throughput` judges it by (one loop
submitting; `submit_many` on SQLite). The target is on the memory store; SQLite's ratio is
shown for comparison.
"""

from __future__ import annotations

import contextlib
import gc
import math
import sqlite3
import time
import uuid
from typing import Any

import anyio
import anyio.to_thread

from runtime.bench import loops
from runtime.bench.measure import CpuShare, Probe, timer
from runtime.bench.model import Figure, Row, ScenarioResult, Target
from runtime.bench.session import Session
from runtime.bench.stores import remove_sqlite, sqlite_path, store_url

from ..config import Config
from . import _shapes, throughput
from ._common import add_ratio, check, make_row

__all__ = ["DESCRIPTION", "NAME", "GroupCommit", "floor_job", "measure_floor", "run"]

NAME = "floor"
DESCRIPTION = "plain anyio tasks, 3 state writes each, no actors; flowactor / floor wall time"
JOB = "benchmarks.scenarios.floor:floor_job"

FIGURES = (
    Figure("runs_per_s", "floor runs/s"),
    Figure("us_per_run", "floor µs per run", "µs", ",.1f"),
    Figure("flowactor_us_per_run", "flowactor µs per run", "µs", ",.1f"),
    Figure("ratio", "flowactor / floor", "x", ",.2f"),
)
TARGETS = {"memory": Target("ratio", "<=", 4.0, "flowactor / floor wall time <= 4x", 10_000)}

Write = tuple[str, str, float]


# -- in the measurement process ---------------------------------------------------------------
class GroupCommit:
    """A durable state log on SQLite: writes queue up; one writer commits them in batches.

    `await write(row)` returns once the transaction holding the row has committed.
    """

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS states (run_id TEXT, type TEXT, timestamp REAL)"
        )
        self._rows: list[Write] = []
        self._committed = anyio.Event()  # set when the batch now filling is committed
        self._queued = anyio.Event()
        self._limiter = anyio.CapacityLimiter(1)  # one writer thread at a time
        self.commits = 0

    async def write(self, row: Write) -> None:
        self._rows.append(row)
        committed = self._committed
        self._queued.set()
        await committed.wait()

    def _commit(self, rows: list[Write]) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO states VALUES (?, ?, ?)", rows)
        self.conn.execute("COMMIT")

    async def run(self) -> None:
        """The writer: commit whatever is queued, wake its writers, repeat (until cancelled)."""
        while True:
            await self._queued.wait()
            self._queued = anyio.Event()
            rows, self._rows = self._rows, []
            committed, self._committed = self._committed, anyio.Event()
            await anyio.to_thread.run_sync(self._commit, rows, limiter=self._limiter)
            self.commits += 1
            committed.set()

    def count(self, state: str | None = None) -> int:
        if state is None:
            (value,) = self.conn.execute("SELECT count(*) FROM states").fetchone()
        else:
            query = "SELECT count(*) FROM states WHERE type = ?"
            (value,) = self.conn.execute(query, (state,)).fetchone()
        return int(value)

    def close(self) -> None:
        self.conn.close()


async def _list_batch(n: int, probe: Probe, cpu: CpuShare | None) -> tuple[float, int, int]:
    writes: list[Write] = []

    async def one() -> None:
        run_id = str(uuid.uuid4())
        writes.append((run_id, "PENDING", time.time()))
        writes.append((run_id, "RUNNING", time.time()))
        writes.append((run_id, "COMPLETED", time.time()))
        probe.done += 1

    started = timer()
    with cpu.measuring() if cpu is not None else contextlib.nullcontext():
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one)
        wall = timer() - started
    completed = sum(1 for w in writes if w[1] == "COMPLETED")
    return wall, completed, len(writes)


async def _sqlite_batch(
    url: str, n: int, probe: Probe, cpu: CpuShare | None
) -> tuple[float, int, int]:
    path = sqlite_path(url)
    assert path is not None
    log = GroupCommit(str(path))

    async def one() -> None:
        run_id = str(uuid.uuid4())
        await log.write((run_id, "PENDING", time.time()))
        await log.write((run_id, "RUNNING", time.time()))
        await log.write((run_id, "COMPLETED", time.time()))
        probe.done += 1

    try:
        async with anyio.create_task_group() as writer:
            writer.start_soon(log.run)
            started = timer()
            with cpu.measuring() if cpu is not None else contextlib.nullcontext():
                async with anyio.create_task_group() as tg:
                    for _ in range(n):
                        tg.start_soon(one)
                wall = timer() - started
            writer.cancel_scope.cancel()
        return wall, log.count("COMPLETED"), log.count()
    finally:
        log.close()


async def _batch(
    store: str, workdir: str, n: int, probe: Probe, cpu: CpuShare | None
) -> tuple[float, int, int]:
    probe.start(n, "run" if cpu is not None else "warm-up")
    if store == "memory":
        return await _list_batch(n, probe, cpu)
    url = store_url("sqlite", workdir, "floor")
    try:
        return await _sqlite_batch(url, n, probe, cpu)
    finally:
        remove_sqlite(url)


def floor_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """One round of the floor: a warm-up batch, then N tasks measured."""
    return loops.run(_floor_main, params, probe, backend=params["backend"])


async def _floor_main(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    n, store, workdir = int(params["n"]), str(params["store"]), str(params["workdir"])
    warmup = int(params.get("warmup", 0))
    if warmup:
        await _batch(store, workdir, warmup, probe, None)
    gc.collect()
    cpu = CpuShare()
    with probe.sampling() as sampler:
        wall, completed, writes = await _batch(store, workdir, n, probe, cpu)
    return {
        "n": n,
        "wall_s": wall,
        "runs_per_s": n / wall if wall > 0 else math.nan,
        "us_per_run": wall / n * 1e6,
        "completed": completed,
        "writes": writes,
        "expected": n,
        "ok": completed == n and writes == 3 * n,
        **sampler.figures(),
        "cpu_foreign_share": cpu.foreign_share,
    }


# -- in the harness ---------------------------------------------------------------------------
def measure_floor(session: Session[Config], n: int, store: str, backend: str) -> Row:
    """The floor's rounds for one case, with the flowactor / floor ratio of the same case."""
    config = session.config
    params = {"n": n, "store": store, "backend": backend, "warmup": config.warmup(n)}
    measured = session.measure(JOB, params, label=f"floor · {store} · {backend} · N={n:,}")
    flowactor = throughput.measure_flowactor(session, n, store, backend)
    how = _shapes.label(throughput.PRIMARY[store])
    case = f"floor · {store} · {backend} (flowactor: {how})"
    row = make_row(NAME, case, params, measured, FIGURES)
    for round_, other in zip(row.rounds, flowactor.rounds, strict=False):
        round_["flowactor_us_per_run"] = other["us_per_run"]
    add_ratio(row, "ratio", flowactor.rounds, row.rounds, "wall_s")
    row.errors.extend(f"flowactor: {e}" for e in flowactor.errors)
    if not flowactor.completed:
        row.errors.append("flowactor: not every run completed")
    return row


def run(session: Session[Config]) -> ScenarioResult:
    """Measure the floor at every size on every selected store; check the ratio on memory."""
    config = session.config
    result = ScenarioResult(NAME, DESCRIPTION, chart="ratio")
    for store in config.stores:
        rows = [measure_floor(session, n, store, config.backend) for n in config.sizes(SIZES)]
        if store in TARGETS:
            check(rows, TARGETS[store])
        result.rows.extend(rows)
    return result


SIZES = throughput.SIZES
