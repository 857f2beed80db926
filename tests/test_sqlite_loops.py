"""Event loops and threads around one SQLite store: a loop that is blocked or gone, or user
code holding every worker thread, costs only its own runs."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from runtime import FlowRun, Pending, Runtime, SQLiteStore, flow
from tests._helpers import wait_thread

pytestmark = pytest.mark.anyio


@flow
async def add(x: int) -> int:
    return x + 1


@contextlib.contextmanager
def _writer_held(db: Path) -> Iterator[None]:
    """Hold the file's write lock: the store's writer waits for it before its next batch."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@contextlib.contextmanager
def _other_loop(main: Callable[[], Awaitable[None]], backend: str) -> Iterator[list[BaseException]]:
    """Run `main` on a second event loop, in a thread, for the duration of the block."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            anyio.run(main, backend=backend)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="second event loop", daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        thread.join(60)
        assert not thread.is_alive(), "the second event loop did not finish"


async def _queue_write(
    tg: anyio.abc.TaskGroup, write: Callable[..., Awaitable[object]], *args: object
) -> None:
    """Start `write(*args)` in `tg` and let it run up to its wait for the commit (the writer is
    held, so it cannot be answered yet)."""
    tg.start_soon(write, *args)
    for _ in range(100):  # scheduling turns, far more than the write needs to be queued
        await anyio.lowlevel.checkpoint()


async def test_a_blocked_loop_does_not_stop_another_loops_runs(
    tmp_path: Path, anyio_backend: str
) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteStore(db, busy_timeout=60)
    opened, held, blocked, release = (threading.Event() for _ in range(4))

    async def blocked_loop() -> None:
        async with Runtime(store=store) as rt:
            assert await (await rt.submit(add, 1)).result() == 2
            opened.set()
            held.wait(30)
            async with anyio.create_task_group() as tg:
                await _queue_write(tg, rt.submit, add, 2)
                # Block this loop's thread (as a sync call in async code does) while its
                # write is in the writer's hands: the answer cannot be delivered here.
                blocked.set()
                release.wait(60)

    with anyio.fail_after(60):
        async with Runtime(store=store) as rt:
            with _other_loop(blocked_loop, anyio_backend) as errors:
                try:
                    await wait_thread(opened)
                    with _writer_held(db):
                        held.set()
                        await wait_thread(blocked)
                    # The writer commits the blocked loop's write now, and cannot wake its
                    # caller: this loop's runs must go on all the same.
                    with anyio.fail_after(20):
                        handles = [await rt.submit(add, i) for i in range(10)]
                        assert [await h.result() for h in handles] == list(range(1, 11))
                    assert not release.is_set()
                finally:
                    release.set()
            assert not errors
    async with Runtime(store=f"sqlite:///{db}") as rt:
        assert len(await rt.list_flow_runs(flow_name="add")) == 12


async def test_a_loop_that_ended_with_a_write_in_flight_does_not_stop_the_writer(
    tmp_path: Path, anyio_backend: str
) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteStore(db, busy_timeout=60)

    async def ending_loop() -> None:
        await store.open()
        try:
            async with anyio.create_task_group() as tg:
                await _queue_write(tg, store.create_flow_run, _new_run())
                tg.cancel_scope.cancel()  # nobody waits for the answer: the write stays queued
        finally:
            await store.close()  # the other loop keeps the store open
        # This event loop ends (and closes) here, before its write is committed.

    with anyio.fail_after(60):
        async with Runtime(store=store) as rt:
            with _writer_held(db), _other_loop(ending_loop, anyio_backend) as errors:
                pass  # leaving joins the other loop's thread, then releases the writer
            assert not errors
            assert await (await rt.submit(add, 5)).result() == 6
            assert len(await rt.list_flow_runs(flow_name="elsewhere")) == 1


def _new_run() -> FlowRun:
    return FlowRun(name="r", flow_name="elsewhere", state=Pending())


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_reads_do_not_wait_for_threads_user_code_holds(tmp_path: Path, store: str) -> None:
    """Sync code that never returns (hooks, say) can hold every thread of anyio's default
    limiter: the store's reads have threads of their own."""
    url = "memory://" if store == "memory" else f"sqlite:///{tmp_path / 'runs.db'}"
    limiter = anyio.to_thread.current_default_thread_limiter()
    release = threading.Event()
    async with Runtime(store=url) as rt:
        handle = await rt.submit(add, 1)
        await handle.wait()
        async with anyio.create_task_group() as tg:
            try:
                for _ in range(int(limiter.total_tokens)):
                    tg.start_soon(anyio.to_thread.run_sync, release.wait)
                while limiter.borrowed_tokens < limiter.total_tokens:
                    await anyio.lowlevel.checkpoint()
                with anyio.fail_after(10):
                    run = await rt.read_flow_run(handle.id)
                    states = await rt.read_states(handle.id)
                    runs = await rt.list_flow_runs(flow_name="add")
            finally:
                release.set()
    assert run.state is not None and run.state.is_completed()
    assert [s.name for s in states] == ["Pending", "Running", "Completed"]
    assert [r.id for r in runs] == [handle.id]
