"""Pause, resume and suspend through the public API."""

from __future__ import annotations

import re

import anyio
import attrs
import pytest

from runtime import (
    FlowPauseTimeout,
    NotPausedError,
    Runtime,
    flow,
    get_run_context,
    pause_flow_run,
    resume_flow_run,
)
from runtime.engine import BaseFlowRunEngine
from tests._helpers import names

pytestmark = pytest.mark.anyio


@attrs.frozen
class Approval:
    who: str
    amount: int


async def wait_until_paused(rt: Runtime, run_id: object) -> None:
    handle = rt.handle(run_id)  # type: ignore[arg-type]
    while not (handle.flow_run.state is not None and handle.flow_run.state.is_paused()):
        await anyio.wait_all_tasks_blocked()


async def test_pause_returns_the_validated_resume_input() -> None:
    @flow
    async def needs_approval() -> Approval:
        return await pause_flow_run(wait_for_input=Approval, timeout=30)

    async with Runtime() as rt:
        h = await rt.submit(needs_approval)
        await wait_until_paused(rt, h.id)
        state = await resume_flow_run(h.id, run_input={"who": "ann", "amount": "3"})
        assert state.is_running()
        assert await h.result() == Approval("ann", 3)
        assert await names(rt, h.id) == ["Pending", "Running", "Paused", "Running", "Completed"]
        assert (await rt.read_flow_run(h.id)).run_count == 1  # a resume is not a new attempt


async def test_pause_without_input_returns_none_and_a_key_fires_once() -> None:
    @flow
    async def twice() -> list[object]:
        first = await pause_flow_run(key="k", timeout=30)
        again = await pause_flow_run(key="k", timeout=30)  # already fired: returns at once
        return [first, again]

    async with Runtime() as rt:
        h = await rt.submit(twice)
        await wait_until_paused(rt, h.id)
        await resume_flow_run(h.id)
        assert await h.result() == [None, None]


async def test_a_pause_that_times_out_fails_the_run_clearly() -> None:
    @flow(retries=2)
    async def forgotten() -> None:
        await pause_flow_run(timeout=0.05)

    async with Runtime() as rt:
        h = await rt.submit(forgotten)
        state = await h.wait()
        assert state.is_failed()
        assert state.message == "The flow was paused and never resumed."
        with pytest.raises(FlowPauseTimeout):
            await h.result()
        assert await names(rt, h.id) == ["Pending", "Running", "Paused", "Failed"]


async def test_resuming_a_run_that_is_not_paused_raises() -> None:
    @flow
    async def quick() -> int:
        return 1

    async with Runtime() as rt:
        h = await rt.submit(quick)
        await h.wait()
        with pytest.raises(NotPausedError):
            await resume_flow_run(h.id)


async def test_invalid_resume_input_fails_the_run_with_a_clear_error() -> None:
    @flow
    async def typed() -> int:
        return await pause_flow_run(wait_for_input=int, timeout=30)

    async with Runtime() as rt:
        h = await rt.submit(typed)
        await wait_until_paused(rt, h.id)
        await resume_flow_run(h.id, run_input="not a number")
        with pytest.raises(TypeError, match="not a valid int"):
            await h.result()


@pytest.mark.parametrize("run_input", [3.5, True])
async def test_a_lossy_resume_input_is_refused_as_a_parameter_would_be(run_input: object) -> None:
    @flow
    async def typed() -> int:
        return await pause_flow_run(wait_for_input=int, timeout=30)

    async with Runtime() as rt:
        h = await rt.submit(typed)
        await wait_until_paused(rt, h.id)
        await resume_flow_run(h.id, run_input=run_input)
        message = f"the resume input {run_input!r} is not a valid int"
        with pytest.raises(TypeError, match=re.escape(message)):
            await h.result()


async def test_the_resume_input_is_converted_where_lossless_and_instances_kept() -> None:
    @flow
    async def approvals() -> tuple[int, Approval, Approval]:
        n = await pause_flow_run(wait_for_input=int, timeout=30)
        given = await pause_flow_run(wait_for_input=Approval, timeout=30)
        as_dict = await pause_flow_run(wait_for_input=Approval, timeout=30)
        return n, given, as_dict

    approval = Approval("bo", 2)
    async with Runtime() as rt:
        h = await rt.submit(approvals)
        with anyio.fail_after(30):  # a refused input ends the run: no pause to wait for then
            for run_input in ("3", approval, {"who": "cy", "amount": "4"}):
                await wait_until_paused(rt, h.id)
                await resume_flow_run(h.id, run_input=run_input)
        n, given, as_dict = await h.result()
    assert (n, as_dict) == (3, Approval("cy", 4)) and given is approval


async def test_the_run_timeout_does_not_count_the_paused_time() -> None:
    @flow(timeout_seconds=0.2)
    async def patient() -> str:
        await pause_flow_run(timeout=30)
        return "done"

    async with Runtime() as rt:
        h = await rt.submit(patient)
        await wait_until_paused(rt, h.id)
        await anyio.sleep(0.3)  # longer than the run's timeout, while paused
        await resume_flow_run(h.id)
        assert await h.result() == "done"


async def test_suspend_ends_the_actor_and_resume_reloads_the_flow_as_a_new_attempt() -> None:
    from tests.flows import suspending

    suspending.attempts.clear()
    async with Runtime() as rt:
        h = await rt.submit(suspending.approval, 5)
        state = await h.wait()  # the actor has ended: waiting returns the Suspended state
        assert state.name == "Suspended" and state.is_paused()
        assert rt.active_runs == 0  # nothing of the run is kept in memory
        resumed = await resume_flow_run(h.id, run_input=True)
        assert resumed.is_running()
        again = rt.handle(h.id)  # the run's new actor
        assert await again.result() == "5 approved=True"
        run = await rt.read_flow_run(h.id)
        assert run.run_count == 2
        assert await names(rt, h.id) == ["Pending", "Running", "Suspended", "Running", "Completed"]
    assert suspending.attempts == [5, 5]


async def test_suspend_another_run_by_id_stops_it_until_resumed() -> None:
    started = anyio.Event()

    @flow
    async def worker() -> None:
        started.set()
        await anyio.sleep_forever()

    async with Runtime() as rt:
        h = await rt.submit(worker)
        await started.wait()
        from runtime import suspend_flow_run

        await suspend_flow_run(flow_run_id=h.id)
        state = await h.wait()
        assert state.name == "Suspended"
        assert await names(rt, h.id) == ["Pending", "Running", "Suspended"]
        with pytest.raises(LookupError):
            await suspend_flow_run(flow_run_id=h.id)  # its actor is gone
        await rt.cancel(h.id)  # a suspended run can still be cancelled from the store
        assert (await rt.read_flow_run(h.id)).state.is_cancelled()  # type: ignore[union-attr]


async def test_cancel_all_tasks_stops_the_attempt() -> None:
    started, stopped = anyio.Event(), anyio.Event()
    engines: list[BaseFlowRunEngine] = []

    @flow
    async def worker() -> None:
        engines.append(get_run_context().engine)
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()

    async with Runtime() as rt:
        h = await rt.submit(worker)
        await started.wait()
        engines[0].cancel_all_tasks()
        with anyio.fail_after(10):
            await stopped.wait()  # the attempt was cancelled, before any cancel of the run
        assert h.flow_run.state is not None and h.flow_run.state.is_running()
        await rt.cancel(h.id)
        assert (await h.wait()).is_cancelled()
