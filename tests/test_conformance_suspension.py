"""Section 4 suspension scenarios (C142-C146): a suspended run stops now and stays Suspended.

We have no deployments: a suspended run is resumed by loading its flow again from its
entrypoint, so suspending needs no deployment, but a subflow (whose parent waits for its
result) still cannot be suspended.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest

from runtime import (
    CancelledRun,
    Runtime,
    UnfinishedRun,
    flow,
    get_run_context,
    suspend_flow_run,
)
from runtime.flow_engine import load_flow_run, run_flow_async
from tests._helpers import names, wait_thread
from tests.flows import suspending

pytestmark = pytest.mark.anyio


def suspend_self_from_thread() -> None:
    """From a sync flow's thread: ask the loop to suspend this very run, by its id."""
    ctx = get_run_context()
    anyio.from_thread.run(suspend_flow_run, None, ctx.flow_run.id, token=ctx.token)


async def test_c142_suspend_stops_the_run_at_once_and_names_it_suspended() -> None:
    """C142: suspend_flow_run() ends the attempt at once (not after what follows); Suspended."""
    after: list[str] = []

    @flow
    async def suspends() -> None:
        await suspend_flow_run()
        after.append("ran on")
        await anyio.sleep(20)

    async with Runtime() as rt:
        h = await rt.submit(suspends)
        with anyio.fail_after(5):
            state = await h.wait()
        assert state.is_paused() and state.name == "Suspended"
        assert await names(rt, h.id) == ["Pending", "Running", "Suspended"]
    assert after == []


async def test_c142_a_sync_flow_suspending_itself_gets_its_thread_back() -> None:
    """C142 (sync): suspending from a sync flow's thread raises there, so the thread ends."""
    unwound = threading.Event()
    seen: list[BaseException] = []

    @flow
    def suspends() -> None:
        ctx = get_run_context()
        try:
            anyio.from_thread.run(suspend_flow_run, token=ctx.token)
        except BaseException as exc:
            seen.append(exc)
            raise
        finally:
            unwound.set()

    async with Runtime() as rt:
        h = await rt.submit(suspends)
        assert (await h.wait()).name == "Suspended"
        await wait_thread(unwound)
        assert len(seen) == 1 and isinstance(seen[0], CancelledRun)
        assert await names(rt, h.id) == ["Pending", "Running", "Suspended"]


async def test_c143_a_subflow_cannot_be_suspended() -> None:
    """C143: suspending a subflow, itself or by id, raises "Cannot suspend subflows."."""
    started = anyio.Event()
    release = anyio.Event()

    @flow
    async def suspending_child() -> None:
        await suspend_flow_run()

    @flow
    async def parked_child() -> int:
        started.set()
        await release.wait()
        return 1

    @flow
    async def parent() -> int:
        with pytest.raises(RuntimeError, match="Cannot suspend subflows"):
            await suspending_child()
        return await parked_child()

    async with Runtime() as rt:
        h = await rt.submit(parent)
        with anyio.fail_after(5):
            await started.wait()
        (child,) = await rt.list_flow_runs(flow_name="parked-child")
        with pytest.raises(RuntimeError, match="Cannot suspend subflows"):
            await suspend_flow_run(flow_run_id=child.id)
        release.set()
        assert await h.result() == 1  # neither child was suspended
        (failed,) = await rt.list_flow_runs(flow_name="suspending-child")
        assert await names(rt, failed.id) == ["Pending", "Running", "Failed"]
        assert await names(rt, child.id) == ["Pending", "Running", "Completed"]


async def test_c144_a_suspended_run_is_not_started_again_by_running_it() -> None:
    """C144: running an already Suspended run raises before Running; the function never runs."""
    suspending.attempts.clear()
    async with Runtime() as rt:
        h = await rt.submit(suspending.approval, 3)
        assert (await h.wait()).name == "Suspended"
        run = await load_flow_run(h.id)
        with pytest.raises(UnfinishedRun, match="resume_flow_run"):
            await run_flow_async(suspending.approval, flow_run=run)
        assert suspending.attempts == [3]  # only the attempt that suspended
        assert await names(rt, h.id) == ["Pending", "Running", "Suspended"]


async def test_c144_a_subprocess_does_not_run_a_suspended_run(tmp_path: Path) -> None:
    """C144 (subprocess): given a Suspended run, the child exits 0 and runs nothing."""
    from runtime.flow_engine import run_flow_in_subprocess

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    suspending.attempts.clear()
    async with Runtime(store=url) as rt:
        h = await rt.submit(suspending.approval, 4)
        assert (await h.wait()).name == "Suspended"
        run = await rt.read_flow_run(h.id)
        process = run_flow_in_subprocess(suspending.approval, flow_run=run, store=url)
        await anyio.to_thread.run_sync(process.join, 60)
        assert process.exitcode == 0
        assert await names(rt, h.id) == ["Pending", "Running", "Suspended"]
        assert (await rt.read_flow_run(h.id)).run_count == 1


async def test_c145_a_suspended_run_stays_suspended_however_its_code_ends() -> None:
    """C145: suspended as it ends (returning, raising, overrunning its timeout): stays Suspended."""
    release = threading.Event()
    finished: list[threading.Event] = []

    def ending(how: str) -> Any:
        done = threading.Event()
        finished.append(done)

        @flow(name=f"ends-by-{how}", timeout_seconds=0.1 if how == "timeout" else None)
        def ends() -> int:
            try:
                suspend_self_from_thread()
                if how == "raise":
                    raise ValueError("after the suspension")
                if how == "timeout":
                    release.wait(10)  # past the deadline
                return 42
            finally:
                done.set()

        return ends

    async with Runtime() as rt:
        try:
            for how in ("return", "raise", "timeout"):
                h = await rt.submit(ending(how))
                assert (await h.wait()).name == "Suspended"
                if how == "timeout":
                    await anyio.sleep(0.15)  # past its deadline: no TimedOut may follow
                else:
                    await wait_thread(finished[-1])  # its return or raise has happened
                    await anyio.wait_all_tasks_blocked()  # and reached the run's actor
                assert await names(rt, h.id) == ["Pending", "Running", "Suspended"], how
        finally:
            release.set()
        for done in finished:
            await wait_thread(done)


async def test_c146_a_sync_run_suspended_by_id_starts_no_further_subflow() -> None:
    """C146: suspended by id, a run's running subflow completes; its next one never starts."""
    started = threading.Event()
    gate = threading.Event()
    refused: list[BaseException] = []
    unwound = threading.Event()

    @flow
    def first_child() -> int:
        started.set()
        gate.wait(10)
        return 1

    @flow
    def second_child() -> int:
        return 2

    @flow
    def parent() -> int:
        try:
            first_child()
            try:
                return second_child()
            except BaseException as exc:
                refused.append(exc)
                raise
        finally:
            unwound.set()

    async with Runtime() as rt:
        h = await rt.submit(parent)
        await wait_thread(started)
        try:
            await suspend_flow_run(flow_run_id=h.id)
            assert (await h.wait()).name == "Suspended"
        finally:
            gate.set()
        await wait_thread(unwound)
        (first,) = await rt.list_flow_runs(flow_name="first-child")
        assert await names(rt, first.id) == ["Pending", "Running", "Completed"]
        assert await rt.list_flow_runs(flow_name="second-child") == []
        assert len(refused) == 1 and isinstance(refused[0], CancelledRun)
        assert await names(rt, h.id) == ["Pending", "Running", "Suspended"]


async def test_c146_an_async_subflow_running_when_its_parent_is_suspended_completes() -> None:
    """C146 (async): suspending a parent by id lets the subflow it awaits finish, not crash."""
    started = anyio.Event()
    gate = anyio.Event()

    @flow
    async def child() -> int:
        started.set()
        await gate.wait()
        return 1

    @flow
    async def parent() -> int:
        return await child()

    async with Runtime() as rt:
        h = await rt.submit(parent)
        await started.wait()
        (run,) = await rt.list_flow_runs(flow_name="child")
        child_handle = rt.handle(run.id)
        await suspend_flow_run(flow_run_id=h.id)
        assert (await h.wait()).name == "Suspended"
        gate.set()
        with anyio.fail_after(5):
            assert (await child_handle.wait()).is_completed()
        assert await names(rt, run.id) == ["Pending", "Running", "Completed"]


async def test_c146_a_run_suspended_by_id_submits_no_further_run() -> None:
    """C146 (.submit): after its suspension, a sync flow's thread cannot submit a new run."""
    started = threading.Event()
    gate = threading.Event()
    unwound = threading.Event()

    @flow
    async def submitted() -> int:
        return 1

    @flow
    def parent() -> None:
        ctx = get_run_context()
        started.set()
        try:
            gate.wait(10)
            anyio.from_thread.run(ctx.runtime.submit, submitted, token=ctx.token)
        finally:
            unwound.set()

    async with Runtime() as rt:
        h = await rt.submit(parent)
        await wait_thread(started)
        try:
            await suspend_flow_run(flow_run_id=h.id)
            assert (await h.wait()).name == "Suspended"
        finally:
            gate.set()
        await wait_thread(unwound)
        assert await rt.list_flow_runs(flow_name="submitted") == []
