"""Runtime lifecycle: graceful exit, shutdown(cancel=True), app cancellation, limits, scale."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from runtime import FINAL_STATES, MemoryStore, Runtime, RuntimeClosed, StateType, flow
from runtime.errors import StoreFull
from tests._arrivals import Arrivals

pytestmark = pytest.mark.anyio


async def test_leaving_the_block_waits_for_unfinished_runs() -> None:
    gate = anyio.Event()

    @flow
    async def gated() -> str:
        await gate.wait()
        return "finished"

    async with Runtime() as rt:
        h = await rt.submit(gated)
        rt_store = rt.store
        # Opening the gate only after the block has started to exit: from another task.
        async with anyio.create_task_group() as tg:

            async def open_later() -> None:
                await anyio.wait_all_tasks_blocked()
                gate.set()

            tg.start_soon(open_later)
    run = await rt_store.read_flow_run(h.id)
    assert run.state is not None and run.state.is_completed()


async def test_shutdown_cancel_cancels_unfinished_runs() -> None:
    started = anyio.Event()

    @flow
    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    async with Runtime() as rt:
        handles = [await rt.submit(forever) for _ in range(5)]
        await started.wait()
        await rt.shutdown(cancel=True)
        for h in handles:
            assert (await h.wait()).is_cancelled()
        with pytest.raises(RuntimeClosed):
            await rt.submit(forever)


async def test_app_cancelling_the_runtime_scope_crashes_unfinished_runs() -> None:
    started = anyio.Event()

    @flow
    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    rt = Runtime()
    with anyio.CancelScope() as app_scope:
        async with rt:
            h = await rt.submit(forever)
            await started.wait()
            app_scope.cancel()
            await anyio.sleep_forever()
    run = await rt.store.read_flow_run(h.id)
    assert run.state is not None and run.state.is_crashed()
    assert run.state.message == "Execution was cancelled by the runtime environment."
    assert [s.name for s in await rt.store.read_states(h.id)] == ["Pending", "Running", "Crashed"]


async def test_runtime_block_raising_crashes_unfinished_runs_with_the_reason() -> None:
    started = anyio.Event()

    @flow
    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    rt = Runtime()
    with pytest.raises(LookupError):
        async with rt:
            h = await rt.submit(forever)
            await started.wait()
            raise LookupError("app bug")
    run = await rt.store.read_flow_run(h.id)
    assert run.state is not None and run.state.is_crashed()
    assert run.state.message == "The runtime exited with an error: LookupError: app bug"


async def test_concurrency_limit_bounds_runs_executing_at_once() -> None:
    running = 0
    peak = 0

    @flow
    async def tracked() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.01)
        running -= 1

    async with Runtime(concurrency_limit=3) as rt:
        handles = [await rt.submit(tracked) for _ in range(12)]
        for h in handles:
            assert (await h.wait()).is_completed()
    assert peak == 3


async def test_thread_limit_bounds_sync_flow_threads() -> None:
    lock = threading.Lock()
    running = 0
    peak = 0

    @flow
    def tracked() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        threading.Event().wait(0.02)
        with lock:
            running -= 1

    async with Runtime(thread_limit=2) as rt:
        handles = [await rt.submit(tracked) for _ in range(8)]
        for h in handles:
            assert (await h.wait()).is_completed()
    assert peak <= 2


async def test_runtime_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="concurrency_limit"):
        Runtime(concurrency_limit=0)
    with pytest.raises(ValueError, match="unsupported store URL"):
        Runtime(store="nosuch://x")
    rt = Runtime()
    with pytest.raises(RuntimeClosed):
        await rt.read_flow_run(__import__("uuid").uuid4())


async def test_ten_thousand_concurrent_trivial_runs_all_complete() -> None:
    @flow
    async def trivial(i: int) -> int:
        return i

    async with Runtime() as rt:
        handles = [await rt.submit(trivial, i) for i in range(10_000)]
        results = [await h.result() for h in handles]
        assert results == list(range(10_000))
        completed = await rt.list_flow_runs(state=StateType.COMPLETED, flow_name="trivial")
        assert len(completed) == 10_000


async def test_cancelling_a_thousand_running_runs_leaves_none_unfinished() -> None:
    started = Arrivals(1_000)

    @flow
    async def parked() -> None:
        started.arrive()
        await anyio.sleep_forever()

    async with Runtime() as rt:
        handles = [await rt.submit(parked) for _ in range(1_000)]
        await started.wait()
        async with anyio.create_task_group() as tg:
            for h in handles:
                tg.start_soon(h.cancel)
        runs = await rt.list_flow_runs(flow_name="parked")
        assert len(runs) == 1_000
        assert all(r.state is not None and r.state.type in FINAL_STATES for r in runs)
        assert all(r.state is not None and r.state.is_cancelled() for r in runs)


class _FailingFinalWrites(MemoryStore):
    """A memory store whose disk 'fills up' when a run tries to record a final state."""

    async def set_state(self, run_id: Any, state: Any, **options: Any) -> Any:
        if state.is_final():
            raise StoreFull("database or disk is full", "test.db")
        return await super().set_state(run_id, state, **options)


async def test_a_store_failure_mid_run_ends_the_run_and_never_hangs() -> None:
    @flow
    async def ok() -> int:
        return 1

    with anyio.fail_after(10):
        async with Runtime(store=_FailingFinalWrites()) as rt:
            h = await rt.submit(ok)
            state = await h.wait()
            assert state.is_crashed()
            assert "could not be recorded" in (state.message or "")
            with pytest.raises(StoreFull, match="full"):
                await h.result()
            # The store still shows the last state it committed; recovery will end it.
            assert (await rt.read_flow_run(h.id)).state.is_running()  # type: ignore[union-attr]
