"""Leaving `async with Runtime()` normally: runs in flight finish, subflows they start while the
block is being left still run, new top-level runs are refused, and nothing is left behind."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.from_thread
import pytest

from runtime import MemoryStore, Runtime, RuntimeClosed, StateType, flow, get_run_context
from tests._helpers import wait_thread

pytestmark = pytest.mark.anyio

HANG = 30  # only against a hang


@flow
async def child(x: int) -> int:
    return x + 1


@flow
def sync_child(x: int) -> int:
    return x + 1


async def _leave_then(gate: anyio.Event, rt: Runtime, refused: list[BaseException]) -> None:
    """Once the block is being left (its exit waits for the runs): try a top-level submit,
    then let the runs go on."""
    await anyio.wait_all_tasks_blocked()
    try:
        await rt.submit(child, 0)
    except RuntimeClosed as exc:
        refused.append(exc)
    gate.set()


async def test_subflows_started_while_the_block_is_left_still_run() -> None:
    gate = anyio.Event()

    @flow
    async def parent() -> list[int]:
        await gate.wait()  # opened only once the runtime's block is being left
        direct = await child(1)
        handle = await get_run_context().runtime.submit(child, 2)  # a run started inside it
        return [direct, await handle.result()]

    refused: list[BaseException] = []
    with anyio.fail_after(HANG):
        # The task group is entered before the runtime: its tasks outlive the block.
        async with anyio.create_task_group() as tg, Runtime() as rt:
            h = await rt.submit(parent)
            tg.start_soon(_leave_then, gate, rt, refused)
    assert await _stored_result(rt, h.id) == StateType.COMPLETED
    assert await h.result() == [2, 3]
    assert len(refused) == 1  # a new top-level run is refused meanwhile


async def test_sync_subflows_started_while_the_block_is_left_still_run() -> None:
    gate = threading.Event()
    waiting = threading.Event()

    @flow
    def parent() -> int:
        waiting.set()
        gate.wait(HANG)  # opened only once the runtime's block is being left
        token = get_run_context().token
        return int(sync_child(1)) + int(anyio.from_thread.run(child, 10, token=token))

    async def open_gate_on_exit() -> None:
        await wait_thread(waiting)
        await anyio.wait_all_tasks_blocked()
        gate.set()

    with anyio.fail_after(HANG):
        async with anyio.create_task_group() as tg, Runtime() as rt:
            h = await rt.submit(parent)
            tg.start_soon(open_gate_on_exit)
    assert await h.result() == 13


async def test_shutdown_without_cancel_still_accepts_subflows_of_runs_in_flight() -> None:
    gate = anyio.Event()

    @flow
    async def parent() -> int:
        await gate.wait()
        return await child(1)

    refused: list[BaseException] = []
    with anyio.fail_after(HANG):
        async with Runtime() as rt, anyio.create_task_group() as tg:
            h = await rt.submit(parent)
            tg.start_soon(_leave_then, gate, rt, refused)
            await rt.shutdown()
            assert await h.result() == 2
    assert len(refused) == 1


class _SlowCreates(MemoryStore):
    """A memory store whose run creation waits for a gate (a busy durable store, say)."""

    writes_never_wait = False

    def __init__(self) -> None:
        super().__init__()
        self.entered = anyio.Event()
        self.gate = anyio.Event()

    async def create_flow_runs(self, runs: Any, *, then: Any = None) -> Any:
        self.entered.set()
        await self.gate.wait()
        return await super().create_flow_runs(runs, then=then)


async def test_a_submit_in_progress_when_the_block_is_left_is_waited_for() -> None:
    """Admitted before the exit began, recorded after: the exit waits for that run too
    (it is not left Pending in the store with no actor)."""
    store = _SlowCreates()
    handles: list[Any] = []

    async def submit(rt: Runtime) -> None:
        handles.append(await rt.submit(child, 1))

    async def open_gate_on_exit() -> None:
        await store.entered.wait()
        await anyio.wait_all_tasks_blocked()  # the block is being left by now
        store.gate.set()

    with anyio.fail_after(HANG):
        async with anyio.create_task_group() as tg, Runtime(store=store) as rt:
            tg.start_soon(submit, rt)
            tg.start_soon(open_gate_on_exit)
            await store.entered.wait()
    assert await handles[0].result() == 2
    assert await _stored_result(rt, handles[0].id) == StateType.COMPLETED


async def _stored_result(rt: Runtime, run_id: Any) -> StateType:
    run = await rt.store.read_flow_run(run_id)
    assert run.state is not None
    return run.state.type
