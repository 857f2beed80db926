"""Faults of the SQLite store: each gives a clear, typed error; committed runs survive."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime import (
    Completed,
    FlowRun,
    Pending,
    Running,
    Runtime,
    SQLiteStore,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreLocked,
    StoreReadOnly,
    StoreSchemaError,
    StoreStalled,
    flow,
)
from runtime.stores import _sqlite_schema
from runtime.stores._sqlite_writer import Writer
from tests._arrivals import Arrivals
from tests._children import CHILD, read_until
from tests._helpers import wait_thread

pytestmark = pytest.mark.anyio


@flow(name="ok")
async def _ok() -> None:
    return None


def _run(i: int = 0) -> FlowRun:
    return FlowRun(name=f"r{i}", flow_name="fault", parameters={"i": i}, state=Pending())


async def _committed(store: SQLiteStore, n: int) -> list[FlowRun]:
    """`n` runs taken to Completed: the history a fault must not lose."""
    runs = []
    for i in range(n):
        run = await store.create_flow_run(_run(i))
        await store.set_state(run.id, Running())
        await store.set_state(run.id, Completed())
        runs.append(run)
    return runs


async def _assert_intact(store: SQLiteStore, runs: list[FlowRun]) -> None:
    for run in runs:
        assert [s.name for s in await store.read_states(run.id)] == [
            "Pending",
            "Running",
            "Completed",
        ]


@contextlib.contextmanager
def _exclusive_lock(db: Path) -> Iterator[None]:
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


async def test_locked_database_fails_every_caller_of_the_batch_then_recovers(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteStore(db, busy_timeout=0.1)
    await store.open()
    try:
        kept = await _committed(store, 3)
        errors: list[BaseException] = []

        async def write(i: int) -> None:
            try:
                await store.create_flow_run(_run(100 + i))
            except StoreError as exc:
                errors.append(exc)

        with _exclusive_lock(db):
            # Readers never wait for the writer (WAL), even while it cannot write.
            await _assert_intact(store, kept)
            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(write, i)
        assert len(errors) == 20 and len({id(e) for e in errors}) == 20
        assert all(isinstance(e, StoreLocked) for e in errors)
        message = str(errors[0])
        assert str(db) in message and "locked" in message and "busy timeout (0.1 s)" in message
        # The writer goes on once the lock is gone; nothing committed was lost.
        after = await store.create_flow_run(_run(999))
        await store.set_state(after.id, Running())
        await _assert_intact(store, kept)
        assert len(await store.list_flow_runs()) == 4
    finally:
        await store.close()


async def test_a_runtime_submitting_into_a_locked_database_gets_the_error(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"

    @flow
    async def add(x: int) -> int:
        return x + 1

    with anyio.fail_after(10):
        async with Runtime(store=SQLiteStore(db, busy_timeout=0.1)) as rt:
            assert await (await rt.submit(add, 1)).result() == 2
            with _exclusive_lock(db), pytest.raises(StoreLocked, match="is locked"):
                await rt.submit(add, 2)
            assert await (await rt.submit(add, 3)).result() == 4
            assert len(await rt.list_flow_runs()) == 2


async def test_read_only_database_refuses_writes_and_keeps_its_runs(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteStore(db)
    await store.open()
    kept = await _committed(store, 3)
    await store.close()

    read_only = SQLiteStore.from_url(f"sqlite:///{db}?mode=ro")
    await read_only.open()
    try:
        await _assert_intact(read_only, kept)
        with pytest.raises(StoreReadOnly) as caught:
            await read_only.create_flow_run(_run(7))
        assert str(db) in str(caught.value) and "read-only" in str(caught.value)
        with pytest.raises(StoreReadOnly):
            await read_only.set_state(kept[0].id, Running(), force=True)
        await _assert_intact(read_only, kept)
    finally:
        await read_only.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
async def test_read_only_file_refuses_writes(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteStore(db)
    await store.open()
    kept = await _committed(store, 2)
    await store.close()
    db.chmod(0o444)
    store = SQLiteStore(db)
    await store.open()
    try:
        with pytest.raises(StoreReadOnly, match="read-only"):
            await store.create_flow_run(_run(7))
        await _assert_intact(store, kept)
    finally:
        await store.close()


async def test_full_disk_fails_the_writes_and_keeps_what_was_committed(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteStore(db, pragmas={"max_page_count": 40})  # a "disk" of 40 pages
    await store.open()
    try:
        kept: list[FlowRun] = []
        with pytest.raises(StoreFull) as caught:
            for _ in range(10_000):
                kept.extend(await _committed(store, 1))
        assert kept, "the page limit left no room for any run"
        message = str(caught.value)
        assert str(db) in message and "full" in message and "committed are kept" in message
        # Still answering (and still full), never hanging; all committed runs readable.
        with anyio.fail_after(5), pytest.raises(StoreFull):
            await _committed(store, 1)
        await _assert_intact(store, kept)
    finally:
        with anyio.fail_after(5):
            await store.close()
    reopened = SQLiteStore(db)
    await _assert_intact(reopened, kept)


async def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database\n" * 200)
    store = SQLiteStore(bogus)
    with pytest.raises(StoreCorrupt) as caught:
        await store.open()
    assert str(bogus) in str(caught.value) and "not a SQLite database" in str(caught.value)
    with pytest.raises(StoreCorrupt):
        async with Runtime(store=f"sqlite:///{bogus}"):
            pass


async def test_a_damaged_file_is_reported_corrupt(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteStore(db)
    await store.open()
    kept = await _committed(store, 50)
    await store.close()
    data = bytearray(db.read_bytes())
    data[4096:] = b"\xab" * (len(data) - 4096)  # every page but the first (the header)
    db.write_bytes(bytes(data))

    store = SQLiteStore(db)
    await store.open()
    try:
        with pytest.raises(StoreCorrupt) as caught:
            await store.read_flow_run(kept[0].id)
        assert str(db) in str(caught.value) and "corrupt" in str(caught.value)
        with pytest.raises(StoreCorrupt):
            await store.set_state(kept[1].id, Running(), force=True)
    finally:
        await store.close()

    data[100:4096] = b"\xcd" * (4096 - 100)  # now the schema page too
    db.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt, match="corrupt"):
        await SQLiteStore(db).open()


async def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteStore(db)
    await store.open()
    await store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreSchemaError) as caught:
        await SQLiteStore(db).open()
    message = str(caught.value)
    assert str(db) in message and "newer flowactor" in message and "99" in message


async def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "theirs.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        conn.commit()
    with pytest.raises(StoreSchemaError, match="not a flowactor store") as caught:
        await SQLiteStore(db).open()
    assert str(db) in str(caught.value)


# -- a slow or a stuck writer ----------------------------------------------------------------
class _PacedWriter:
    """Makes the store's writer thread take `delay` seconds per batch, or block until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.delay = 0.0
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.release.set()
        commit = Writer._commit

        def paced(writer: Writer, batch: list[Any]) -> None:
            if not self.release.is_set():
                self.blocked.set()
                self.release.wait()
            time.sleep(self.delay)
            commit(writer, batch)

        monkeypatch.setattr(Writer, "_commit", paced)


async def test_runs_ending_at_once_wait_behind_each_other_longer_than_persist_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that keeps committing is not stuck: every final state lands, however long the
    queue (persist_timeout bounds the store's progress, not one write's wait)."""
    n = 8
    writer = _PacedWriter(monkeypatch)
    running = Arrivals(n)

    @flow
    async def parked() -> None:
        running.arrive()
        await anyio.sleep_forever()

    store = SQLiteStore(tmp_path / "runs.db", max_batch=1)  # one write per transaction
    async with Runtime(store=store, persist_timeout=0.2) as rt:
        handles = [await rt.submit(parked) for _ in range(n)]
        await running.wait()
        # 2 writes per run, 40 ms each: the last run's writes wait ~0.6 s, 3x persist_timeout.
        writer.delay = 0.04
        await rt.shutdown(cancel=True)
        states = [await h.wait() for h in handles]
        assert [s.name for s in states] == ["Cancelled"] * n
        stored = await rt.list_flow_runs(flow_name="parked")
        assert [r.state.name for r in stored if r.state is not None] == ["Cancelled"] * n


async def test_a_stuck_writer_cannot_hang_a_cancel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that commits nothing for persist_timeout is stalled: the run ends (Crashed, in
    memory) instead of waiting for ever, and recovery ends it in the store."""
    writer = _PacedWriter(monkeypatch)
    started = anyio.Event()
    url = f"sqlite:///{tmp_path / 'runs.db'}"

    @flow
    async def parked() -> None:
        started.set()
        await anyio.sleep_forever()

    with anyio.fail_after(30):
        async with Runtime(store=url, persist_timeout=0.2) as rt:
            h = await rt.submit(parked)
            await started.wait()
            writer.release.clear()  # the next batch blocks in the writer thread
            state = await h.wait() if await h.cancel() else h.flow_run.state
            assert state is not None and state.is_crashed()
            assert "could not be recorded" in (state.message or "")
            with pytest.raises(StoreStalled, match="committed nothing"):
                await h.result()
            assert writer.blocked.is_set()
            writer.release.set()  # the stuck batch goes through after all: Cancelling
        # The next runtime on the file finds the run unfinished and its owner gone.
        async with Runtime(store=url) as rt:
            run = await rt.read_flow_run(h.id)
            assert run.state is not None and run.state.is_cancelled()


async def test_a_lease_is_renewed_before_a_long_queue_of_run_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Owner ops take the writer's own lane: a renewal waits for the batch being committed,
    never for the run writes queued before it (100,000 parked runs once made a live owner
    look dead this way)."""
    writer = _PacedWriter(monkeypatch)
    store = SQLiteStore(tmp_path / "runs.db", max_batch=1)  # one write per transaction
    await store.open()
    try:
        owner = uuid.uuid4()
        await store.register_owner(owner, 60.0)
        runs = [await store.create_flow_run(_run(i)) for i in range(20)]
        finished: list[str] = []

        async def start(run: FlowRun) -> None:
            await store.set_state(run.id, Running())
            finished.append("run")

        async def renew() -> None:
            assert await store.renew_lease(owner, 60.0)
            finished.append("lease")

        writer.release.clear()  # the next batch blocks in the writer thread
        async with anyio.create_task_group() as tg:
            for run in runs:
                tg.start_soon(start, run)
            await wait_thread(writer.blocked)
            await anyio.wait_all_tasks_blocked()  # all 20 writes are queued
            tg.start_soon(renew)
            await anyio.wait_all_tasks_blocked()
            writer.release.set()
        # At most the write that was being committed went first (callers woken in the same
        # turn of their event loop resume in any order).
        assert finished.index("lease") <= 1, finished
    finally:
        await store.close()


async def test_processes_opening_a_new_store_at_once_all_open_it(tmp_path: Path) -> None:
    """Switching a new file to WAL fails at once (SQLite skips its busy wait there) for some
    of the processes doing it together: they try again instead of failing."""
    db = tmp_path / "runs.db"
    n = 4
    command = [sys.executable, str(CHILD), "open", str(db)]
    async with contextlib.AsyncExitStack() as stack:
        children = [
            await stack.enter_async_context(await anyio.open_process(command)) for _ in range(n)
        ]
        with anyio.fail_after(60):
            for child in children:
                assert b"READY" in await read_until(child, b"READY")
            start = f"{time.time() + 0.2!r}\n".encode()  # all of them start at this moment
            for child in children:
                assert child.stdin is not None
                await child.stdin.send(start)
            done = [b"DONE" in await read_until(child, b"DONE") for child in children]
            codes = [await child.wait() for child in children]
        errors = [
            (await child.stderr.receive(65536)).decode(errors="replace")
            for child in children
            if child.stderr is not None and child.returncode
        ]
    assert done == [True] * n and codes == [0] * n, errors
    async with Runtime(store=f"sqlite:///{db}") as rt:
        runs = await rt.list_flow_runs(flow_name="opened")
        assert [r.state.name for r in runs if r.state is not None] == ["Completed"] * n


def _busy_error() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    error.sqlite_errorname = "SQLITE_BUSY"  # type: ignore[attr-defined]
    return error


async def test_a_store_whose_setup_finds_the_file_busy_tries_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLITE_BUSY raised without SQLite's own wait is tried again within the busy timeout."""
    ensure = _sqlite_schema._ensure_schema
    attempts = 0

    def busy_three_times(conn: sqlite3.Connection, config: Any) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 3:
            raise _busy_error()
        ensure(conn, config)

    monkeypatch.setattr(_sqlite_schema, "_ensure_schema", busy_three_times)
    async with Runtime(store=SQLiteStore(tmp_path / "runs.db")) as rt:
        assert (await (await rt.submit(_ok)).wait()).is_completed()
    assert attempts == 4


async def test_a_store_whose_file_stays_busy_fails_after_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = 0

    def always_busy(conn: sqlite3.Connection, config: Any) -> None:
        nonlocal attempts
        attempts += 1
        raise _busy_error()

    monkeypatch.setattr(_sqlite_schema, "_ensure_schema", always_busy)
    db = tmp_path / "runs.db"
    started = time.monotonic()
    with pytest.raises(StoreLocked, match=r"busy timeout \(0.05 s\)") as caught:
        async with Runtime(store=SQLiteStore(db, busy_timeout=0.05)):
            pass
    assert time.monotonic() - started >= 0.05  # it waited out the timeout, then gave up
    assert attempts > 1 and str(db) in str(caught.value)
