"""Section 4 timeout scenarios (C58-C67): when a run is TimedOut, and what its code can still do.

Sync flows run in worker threads that Python cannot stop: at the deadline the run is recorded
TimedOut at once and the thread is abandoned; it stops at its next `check_cancelled()` or
subflow call. Tests that block a thread release it before they end.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from runtime import (
    FlowRunTimeoutError,
    Runtime,
    State,
    check_cancelled,
    flow,
)
from tests._helpers import names, wait_thread

pytestmark = pytest.mark.anyio


async def test_c58_a_sleep_past_the_timeout_ends_timed_out_sync_and_async() -> None:
    """C58: sync and async flows sleeping past timeout_seconds end Failed "TimedOut"."""
    release = threading.Event()

    @flow(timeout_seconds=0.1)
    def sync_sleeper() -> None:
        release.wait(10)  # a blocking call, as time.sleep

    @flow(timeout_seconds=0.1)
    async def async_sleeper() -> None:
        await anyio.sleep(10)

    async with Runtime() as rt:
        try:
            for sleeper in (sync_sleeper, async_sleeper):
                h = await rt.submit(sleeper)
                with anyio.fail_after(5):
                    state = await h.wait()
                assert state.is_failed() and state.name == "TimedOut"
                assert "exceeded timeout of 0.1 second(s)" in (state.message or "")
                with pytest.raises(TimeoutError):
                    await h.result()
                assert await names(rt, h.id) == ["Pending", "Running", "TimedOut"]
        finally:
            release.set()


async def test_c59_a_run_within_its_timeout_completes() -> None:
    """C59: sync and async flows that finish within timeout_seconds end Completed."""

    @flow(timeout_seconds=5)
    def sync_quick() -> int:
        return 1

    @flow(timeout_seconds=5)
    async def async_quick() -> int:
        return 2

    async with Runtime() as rt:
        for quick, value in ((sync_quick, 1), (async_quick, 2)):
            h = await rt.submit(quick)
            assert await h.result() == value
            assert await names(rt, h.id) == ["Pending", "Running", "Completed"]


async def test_c60_a_timed_out_sync_flow_starts_no_subflow_after_its_deadline() -> None:
    """C60: after a sync flow's deadline its thread's next subflow call raises; none starts.

    Prefect injects the timeout into the thread; we cannot, so the statements right after the
    blocking call still run, but every checkpoint (subflow call, check_cancelled) raises.
    """
    release = threading.Event()
    finished = threading.Event()
    seen: list[str] = []

    @flow
    def child() -> int:
        seen.append("child ran")
        return 1

    @flow(timeout_seconds=0.1)
    def parent() -> int:
        release.wait(10)
        try:
            return child()
        except FlowRunTimeoutError:
            seen.append("subflow refused")
            raise
        finally:
            finished.set()

    async with Runtime() as rt:
        h = await rt.submit(parent)
        state = await h.wait()
        release.set()
        await wait_thread(finished)
        assert state.name == "TimedOut"
        assert seen == ["subflow refused"]
        assert await rt.list_flow_runs(flow_name="child") == []
        assert await names(rt, h.id) == ["Pending", "Running", "TimedOut"]


async def test_c61_an_async_flow_sleeping_in_a_loop_stops_at_the_next_await() -> None:
    """C61: an async flow looping over short sleeps stops at its first await past the deadline."""
    stopped = anyio.Event()
    laps: list[int] = []

    @flow(timeout_seconds=0.1)
    async def looping() -> None:
        try:
            for i in range(1000):  # 10 s if never stopped
                laps.append(i)
                await anyio.sleep(0.01)
        finally:
            stopped.set()

    async with Runtime() as rt:
        h = await rt.submit(looping)
        assert (await h.wait()).name == "TimedOut"
        with anyio.fail_after(5):
            await stopped.wait()
        done = len(laps)
        assert 0 < done < 1000
        await anyio.sleep(0.05)  # several laps' worth: none may follow
        assert len(laps) == done


async def test_c62_a_timed_out_async_subflow_leaves_its_parent_completed() -> None:
    """C62: a subflow that times out is TimedOut, and a parent returning its state completes."""

    @flow(timeout_seconds=0.1)
    async def slow_child() -> None:
        await anyio.sleep(10)

    @flow
    async def parent() -> tuple[None, State]:
        child_state = await slow_child(return_state=True)  # type: ignore[call-arg]
        return None, child_state

    async with Runtime() as rt:
        h = await rt.submit(parent)
        _, child_state = await h.result()
        assert child_state.name == "TimedOut"
        assert "exceeded timeout of 0.1 second(s)" in (child_state.message or "")
        assert (await h.wait()).is_completed()
        (child,) = await rt.list_flow_runs(flow_name="slow-child")
        assert child.parent_flow_run_id == h.id
        assert await names(rt, child.id) == ["Pending", "Running", "TimedOut"]


async def test_c63_a_busy_sync_subflow_is_timed_out_and_stops_at_its_next_check() -> None:
    """C63: a busy sync subflow is TimedOut at its deadline; its loop stops at its next check."""
    stopped = threading.Event()

    @flow(timeout_seconds=0.1)
    def busy_child() -> None:
        try:
            while True:
                check_cancelled()
        except FlowRunTimeoutError:
            stopped.set()
            raise

    @flow
    def parent() -> str:
        child_state: State = busy_child(return_state=True)  # type: ignore[call-arg]
        return child_state.name

    async with Runtime() as rt:
        h = await rt.submit(parent)
        assert await h.result() == "TimedOut"
        await wait_thread(stopped)
        (child,) = await rt.list_flow_runs(flow_name="busy-child")
        assert child.state is not None and "exceeded timeout" in (child.state.message or "")
        assert await names(rt, h.id) == ["Pending", "Running", "Completed"]


async def test_c64_a_subflows_timeout_starts_after_its_upstreams_finish() -> None:
    """C64: time spent waiting for wait_for upstreams does not count against the timeout."""
    gate = anyio.Event()
    outcome: list[State] = []

    @flow
    async def upstream() -> int:
        await gate.wait()
        return 1

    @flow(timeout_seconds=0.1)
    async def downstream() -> str:
        return "done"

    async with Runtime() as rt:
        up = await rt.submit(upstream)

        async def call() -> None:
            outcome.append(await downstream(wait_for=[up], return_state=True))  # type: ignore[call-arg]

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await anyio.sleep(0.3)  # the upstream outlasts the downstream's timeout
            gate.set()
        (state,) = outcome
        assert state.is_completed() and state.data == "done"


async def test_c66_a_timed_out_run_gives_back_its_concurrency_slot() -> None:
    """C66: a timed-out run frees its concurrency_limit slot at once (async and sync)."""

    @flow(timeout_seconds=0.1)
    async def stuck_async() -> None:
        await anyio.sleep_forever()

    @flow
    async def next_run() -> int:
        return 1

    release = threading.Event()

    @flow(timeout_seconds=0.1)
    def stuck_sync() -> None:
        release.wait(10)

    async with Runtime(concurrency_limit=1) as rt:
        try:
            for stuck in (stuck_async, stuck_sync):
                first = await rt.submit(stuck)
                second = await rt.submit(next_run)  # waits in Pending for the only slot
                with anyio.fail_after(5):
                    assert await second.result() == 1
                assert (await first.wait()).name == "TimedOut"
        finally:
            release.set()


async def test_c66_an_abandoned_sync_thread_keeps_its_thread_slot_until_it_returns() -> None:
    """C66 (threads): the run slot is freed at the deadline, the thread slot as its thread ends."""
    release = threading.Event()
    quick_started = threading.Event()
    second_running = anyio.Event()

    @flow(timeout_seconds=0.1)
    def stuck() -> None:
        release.wait(10)

    async def running_hook(f: Any, run: Any, state: State) -> None:
        second_running.set()

    @flow(on_running=[running_hook])
    def quick() -> int:
        quick_started.set()
        return 2

    async with Runtime(concurrency_limit=1, thread_limit=1) as rt:
        try:
            first = await rt.submit(stuck)
            assert (await first.wait()).name == "TimedOut"
            second = await rt.submit(quick)
            with anyio.fail_after(5):
                await second_running.wait()  # it got the run slot the timed-out run gave back
            await anyio.wait_all_tasks_blocked()
            assert not quick_started.is_set()  # but no thread while the old one still runs
        finally:
            release.set()
        assert await second.result() == 2
        assert await names(rt, second.id) == ["Pending", "Running", "Completed"]


async def test_c67_a_blocked_sync_flow_is_timed_out_at_the_deadline() -> None:
    """C67: TimedOut at the deadline while the thread is still blocked (Prefect: only after).

    Prefect's weak point: a sync flow in a non-main thread ends TimedOut only once its blocking
    call returns. Ours is recorded at the deadline; the thread stops at its next check.
    """
    release = threading.Event()
    stopped = threading.Event()

    @flow(timeout_seconds=0.1)
    def blocked() -> None:
        release.wait(30)
        try:
            check_cancelled()
        except FlowRunTimeoutError:
            stopped.set()
            raise

    async with Runtime() as rt:
        h = await rt.submit(blocked)
        begun = anyio.current_time()
        with anyio.fail_after(5):
            state = await h.wait()
        assert anyio.current_time() - begun < 5
        assert state.name == "TimedOut" and not release.is_set()  # the call has not returned
        stored = (await rt.read_flow_run(h.id)).state
        assert stored is not None and stored.name == "TimedOut"
        release.set()
        await wait_thread(stopped)
