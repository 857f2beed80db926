"""Calling flows directly, inside and outside a Runtime, and cancelling the caller."""

from __future__ import annotations

import uuid

import anyio
import pytest

from runtime import Runtime, State, StateType, flow, get_run_context
from tests._arrivals import Arrivals

pytestmark = pytest.mark.anyio


@flow
async def double(x: int) -> int:
    return 2 * x


@flow
async def explode() -> None:
    raise ValueError("exploded")


@flow
def sync_double(x: int) -> int:
    return 2 * x


@flow
def sync_explode() -> None:
    raise ValueError("sync exploded")


def test_sync_flow_called_from_sync_code() -> None:
    assert sync_double(21) == 42
    with pytest.raises(ValueError, match="sync exploded"):
        sync_explode()
    state = sync_explode(return_state=True)  # type: ignore[call-arg]
    assert isinstance(state, State) and state.is_failed()


async def test_async_flow_awaited_outside_a_runtime() -> None:
    assert await double(4) == 8
    with pytest.raises(ValueError, match="exploded"):
        await explode()
    state = await explode(return_state=True)  # type: ignore[call-arg]
    assert isinstance(state, State) and state.type is StateType.FAILED


async def test_async_flow_awaited_inside_a_runtime_runs_there() -> None:
    async with Runtime() as rt:
        assert await double(5) == 10
        runs = await rt.list_flow_runs(flow_name="double")
        assert len(runs) == 1 and runs[0].state is not None and runs[0].state.is_completed()


async def test_subflow_is_linked_to_its_parent() -> None:
    @flow
    async def parent() -> object:
        await double(1)
        return get_run_context().flow_run.id

    async with Runtime() as rt:
        parent_id = await (await rt.submit(parent)).result()
        (child,) = await rt.list_flow_runs(flow_name="double")
        assert child.parent_flow_run_id == parent_id


async def test_sync_subflow_called_from_a_sync_flow() -> None:
    @flow
    def outer(x: int) -> int:
        return sync_double(x) + 1

    async with Runtime() as rt:
        assert await (await rt.submit(outer, 3)).result() == 7
        (child,) = await rt.list_flow_runs(flow_name="sync-double")
        assert child.parent_flow_run_id is not None


async def test_sync_flow_called_on_the_event_loop_is_refused_clearly() -> None:
    with pytest.raises(RuntimeError, match="block the loop"):
        sync_double(1)


async def test_cancelling_the_awaiting_task_still_persists_a_final_state() -> None:
    started = anyio.Event()

    @flow
    async def waits_forever() -> None:
        started.set()
        await anyio.sleep_forever()

    async with Runtime() as rt:
        async with anyio.create_task_group() as tg:
            tg.start_soon(waits_forever)
            await started.wait()
            tg.cancel_scope.cancel()
        (run,) = await rt.list_flow_runs(flow_name="waits-forever")
        assert run.state is not None and run.state.is_crashed()
        assert run.state.message == "Execution was cancelled by the runtime environment."
        names = [s.name for s in await rt.read_states(run.id)]
        assert names == ["Pending", "Running", "Crashed"]


async def test_cancelling_the_caller_outside_a_runtime_still_persists_a_final_state() -> None:
    started = anyio.Event()

    name = f"outside-cancel-{uuid.uuid4()}"  # the default store outlives this test

    @flow(name=name)
    async def waits_forever() -> None:
        started.set()
        await anyio.sleep_forever()

    with anyio.move_on_after(5) as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(waits_forever)
            await started.wait()
            tg.cancel_scope.cancel()
    assert not scope.cancelled_caught
    from runtime._defaults import default_store

    runs = await default_store().list_flow_runs(flow_name=name)
    assert len(runs) == 1 and runs[0].state is not None and runs[0].state.is_crashed()


async def test_parent_retry_reuses_a_completed_subflow_without_rerunning_it() -> None:
    child_calls: list[int] = []
    completions: list[str] = []

    @flow(on_completion=[lambda f, r, s: completions.append(r.name)])
    async def child(x: int) -> int:
        child_calls.append(x)
        return x * 10

    @flow
    async def flaky_child() -> int:
        child_calls.append(-1)
        if child_calls.count(-1) < 2:
            raise ValueError("child fails first")
        return -10

    @flow(retries=1)
    async def parent() -> int:
        first = await child(1)
        second = await flaky_child()
        return first + second

    async with Runtime() as rt:
        h = await rt.submit(parent)
        assert await h.result() == 0
        assert child_calls == [1, -1, -1]  # child(1) ran once; the failed child ran again
        assert len(completions) == 1
        children = await rt.list_flow_runs(flow_name="child")
        assert len(children) == 1
        assert len(await rt.list_flow_runs(flow_name="flaky-child")) == 2


async def test_concurrent_subflows_run_concurrently() -> None:
    running = Arrivals(2)

    @flow
    async def part() -> None:
        running.arrive()
        await running.wait()  # only returns if the other part runs at the same time

    @flow
    async def fan_out() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(part)
            tg.start_soon(part)

    async with Runtime() as rt:
        with anyio.fail_after(5):
            assert (await (await rt.submit(fan_out)).wait()).is_completed()


async def test_subflows_inherit_log_prints_persist_result_and_tags(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    @flow
    async def child() -> None:
        print("from the child")

    @flow(log_prints=True, tags=["team-a"])
    async def parent() -> None:
        await child()

    with caplog.at_level(logging.INFO, logger="flowactor.flow_runs"):
        async with Runtime() as rt:
            await (await rt.submit(parent)).wait()
            (run,) = await rt.list_flow_runs(flow_name="child")
            assert "team-a" in run.tags
    assert any("from the child" in r.getMessage() for r in caplog.records)


async def test_a_subflow_inherits_persist_result_unless_it_sets_its_own() -> None:
    # Observable through encoding: a value JSON cannot hold fails only a persisting run.
    @flow
    async def inherits() -> object:
        return object()

    @flow(persist_result=False)
    async def opts_out() -> object:
        return object()

    @flow(persist_result=True)
    async def parent() -> None:
        await opts_out()
        await inherits()

    async with Runtime() as rt:
        state = await (await rt.submit(parent)).wait()
        assert state.is_failed()
        (kept,) = await rt.list_flow_runs(flow_name="inherits")
        (not_kept,) = await rt.list_flow_runs(flow_name="opts-out")
        assert kept.state is not None and kept.state.is_failed()
        assert "object" in (kept.state.message or "")
        assert not_kept.state is not None and not_kept.state.is_completed()
