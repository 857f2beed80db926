"""Owners' liveness: a dead process is noticed at once on its host, and by every live Runtime.

Child processes hold runs on a SQLite file and are killed; the schema migration keeps older
files opening; the lease warning names its reason (both stores).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.abc
import pytest

from runtime import FlowRun, MemoryStore, Pending, Running, Runtime, SQLiteStore, StateType
from runtime.stores import Store
from tests._children import CHILD, read_until, until

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def _parked_child(db: Path, n: int, lease: float) -> AsyncIterator[anyio.abc.Process]:
    """A child process holding `n` Running runs on `db` (lease `lease` seconds)."""
    async with await anyio.open_process(
        [sys.executable, str(CHILD), "park", str(db), str(n), str(lease)]
    ) as child:
        with anyio.fail_after(60):
            assert b"RUNNING" in await read_until(child, b"RUNNING")
        yield child


async def _kill(child: anyio.abc.Process) -> None:
    child.send_signal(signal.SIGKILL)
    await child.wait()  # reaped: its pid names no process any more


def _assert_crashed(runs: list[object], n: int) -> None:
    assert len(runs) == n
    assert {r.state.type for r in runs if r.state} == {StateType.CRASHED}  # type: ignore[attr-defined]


async def test_a_runtime_opened_right_after_a_kill_recovers_the_runs_at_once(
    tmp_path: Path,
) -> None:
    """The killed process's lease has a minute left, but its pid is gone: its runs are
    recovered by the next Runtime at once, not after the lease."""
    db = tmp_path / "runs.db"
    n = 1_000
    async with _parked_child(db, n, lease=60.0) as child:
        await _kill(child)
    async with Runtime(store=f"sqlite:///{db}") as rt:
        runs = await rt.list_flow_runs(flow_name="parked")
        _assert_crashed(runs, n)
        assert {r.parameters["i"] for r in runs} == set(range(n))
        message = runs[0].state.message if runs[0].state else ""
        assert message and "owned this flow run" in message and "has exited" in message
        for run in runs[:50]:
            names = [s.name for s in await rt.read_states(run.id)]
            assert names == ["Pending", "Running", "Crashed"], names


async def test_a_runtime_already_open_recovers_the_runs_of_a_killed_process(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    n = 1_000
    async with Runtime(store=f"sqlite:///{db}", heartbeat_seconds=0.2) as rt:
        async with _parked_child(db, n, lease=60.0) as child:
            assert len(await rt.list_flow_runs(state=StateType.RUNNING)) == n
            await _kill(child)

        async def all_crashed() -> bool:
            return len(await rt.list_flow_runs(state=StateType.CRASHED)) == n

        await until(all_crashed)  # within a sweep period (0.2 s); the bound is for a hang
        _assert_crashed(await rt.list_flow_runs(flow_name="parked"), n)


async def test_an_owner_of_another_boot_or_container_counts_by_its_lease(tmp_path: Path) -> None:
    """A pid seen from another boot or pid namespace names some other process: the killed
    owner's runs wait for its lease, however dead its pid looks from here."""
    db = tmp_path / "runs.db"
    n = 20
    async with _parked_child(db, n, lease=1.0) as child:
        await _kill(child)
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE owners SET pid_ns = 'pid:[1]'")  # as if in another container
        (expires,) = conn.execute("SELECT lease_expires FROM owners").fetchone()
    async with Runtime(store=f"sqlite:///{db}") as rt:
        if time.time() < expires:  # opened within the lease (nearly always): left alone
            assert len(await rt.list_flow_runs(state=StateType.RUNNING)) == n
        await anyio.sleep(max(0.0, expires - time.time()) + 0.05)
    async with Runtime(store=f"sqlite:///{db}") as rt:
        runs = await rt.list_flow_runs(flow_name="parked")
        _assert_crashed(runs, n)
        assert runs[0].state and "lease expired" in (runs[0].state.message or "")


async def test_a_version_1_file_is_migrated_and_its_orphans_recovered(tmp_path: Path) -> None:
    if sqlite3.sqlite_version_info < (3, 35, 0):
        pytest.skip("making a version 1 file needs ALTER TABLE DROP COLUMN")
    db = tmp_path / "runs.db"
    store = SQLiteStore(db)
    await store.open()
    owner = uuid.uuid4()
    await store.register_owner(owner, 60.0)
    run = await store.create_flow_run(
        FlowRun(name="r", flow_name="old", owner=owner, state=Pending())
    )
    await store.set_state(run.id, Running())
    await store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:  # back to version 1's schema
        conn.execute("DROP INDEX flow_runs_cancelling")
        for column in ("start_time", "boot_id", "pid_ns"):
            conn.execute(f"ALTER TABLE owners DROP COLUMN {column}")
        conn.execute("UPDATE owners SET lease_expires = 0")  # a version 1 owner, long gone
        conn.execute("PRAGMA user_version=1")

    async with Runtime(store=f"sqlite:///{db}") as rt:
        stored = await rt.read_flow_run(run.id)
        assert stored.state is not None and stored.state.is_crashed()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(owners)")}
        assert {"start_time", "boot_id", "pid_ns"} <= columns


# -- the lease warning names its reason ------------------------------------------------------
class _Seen(logging.Handler):
    """Sets `event` at the first record logged at WARNING or above (on the event loop)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.event = anyio.Event()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.event.set()


class _HungMemory(MemoryStore):
    async def renew_lease(self, owner_id: uuid.UUID, lease_seconds: float) -> bool:
        await anyio.sleep_forever()
        raise AssertionError


class _HungSQLite(SQLiteStore):
    async def renew_lease(self, owner_id: uuid.UUID, lease_seconds: float) -> bool:
        await anyio.sleep_forever()
        raise AssertionError


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_the_lease_warning_names_its_reason(kind: str, tmp_path: Path) -> None:
    store: Store = _HungMemory() if kind == "memory" else _HungSQLite(tmp_path / "runs.db")
    seen = _Seen()
    log = logging.getLogger("flowactor.runtime")
    log.addHandler(seen)
    try:
        async with Runtime(store=store, lease_seconds=0.3, persist_timeout=0.05):
            with anyio.fail_after(10):
                await seen.event.wait()
    finally:
        log.removeHandler(seen)
    message = seen.records[0].getMessage()
    assert "Could not renew" in message
    assert message.rstrip().endswith("(TimeoutError)") and "0.05 s" in message, message
