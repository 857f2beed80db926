"""State hooks: once per matching state, in order, sync and async; failures change nothing."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from runtime import (
    CancelledRun,
    Cancelling,
    Crashed,
    CrashedRun,
    Flow,
    FlowRun,
    Runtime,
    State,
    flow,
)

pytestmark = pytest.mark.anyio


def recorder(calls: list[str], label: str) -> Any:
    def hook(f: Flow[..., Any], run: FlowRun, state: State) -> None:
        assert isinstance(f, Flow) and isinstance(run, FlowRun)
        calls.append(f"{label}:{state.name}")

    return hook


def async_recorder(calls: list[str], label: str) -> Any:
    async def hook(f: Flow[..., Any], run: FlowRun, state: State) -> None:
        await anyio.lowlevel.checkpoint()
        calls.append(f"{label}:{state.name}")

    return hook


async def test_completion_hooks_run_once_in_order_sync_and_async() -> None:
    calls: list[str] = []

    @flow(
        on_running=[recorder(calls, "running")],
        on_completion=[recorder(calls, "sync"), async_recorder(calls, "async")],
        on_failure=[recorder(calls, "never")],
    )
    async def ok() -> int:
        return 1

    @ok.on_completion
    def appended(f: Flow[..., Any], run: FlowRun, state: State) -> None:
        calls.append(f"decorated:{state.name}")

    async with Runtime() as rt:
        await (await rt.submit(ok)).wait()
    assert calls == [
        "running:Running",
        "sync:Completed",
        "async:Completed",
        "decorated:Completed",
    ]


async def test_on_running_fires_for_every_attempt() -> None:
    calls: list[str] = []

    @flow(retries=1, on_running=[recorder(calls, "running")])
    async def flaky() -> None:
        if len(calls) < 2:
            raise ValueError("again")

    async with Runtime() as rt:
        assert (await (await rt.submit(flaky)).wait()).is_completed()
    assert calls == ["running:Running", "running:Running"]


async def test_failure_hook_sees_the_final_state() -> None:
    seen: list[State] = []

    @flow(on_failure=[lambda f, r, s: seen.append(s)])
    def broken() -> None:
        raise KeyError("k")

    async with Runtime() as rt:
        await (await rt.submit(broken)).wait()
    assert len(seen) == 1 and seen[0].is_failed() and isinstance(seen[0].data, KeyError)


async def test_a_raising_hook_is_logged_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def bad_hook(f: Flow[..., Any], run: FlowRun, state: State) -> None:
        raise RuntimeError("hook is broken")

    @flow(on_completion=[bad_hook, recorder(calls, "after")])
    async def ok() -> str:
        return "value"

    with caplog.at_level(logging.ERROR, logger="flowactor"):
        async with Runtime() as rt:
            h = await rt.submit(ok)
            assert await h.result() == "value"
            assert [s.name for s in await rt.read_states(h.id)][-1] == "Completed"
    assert calls == ["after:Completed"]
    assert any("bad_hook" in r.getMessage() for r in caplog.records)


def test_hooks_must_be_callables() -> None:
    async def fn() -> None:
        pass

    with pytest.raises(TypeError, match="callables"):
        flow(fn, on_completion=[42])
    with pytest.raises(TypeError, match="list"):
        flow(fn, on_completion=print)


async def test_c98_a_child_returning_cancelling_runs_its_hook_then_the_parents_failure() -> None:
    """C98: a child returning Cancelling runs its on_cancellation, then the parent's on_failure.

    Prefect leaves that child in Cancelling for ever and the parent sees UnfinishedRun; we end
    the child Cancelled (W5: never stuck), so the parent sees CancelledRun and fails.
    """
    calls: list[str] = []

    @flow(on_cancellation=[recorder(calls, "child")])
    async def child() -> State:
        return Cancelling(message="child gives up")

    @flow(on_failure=[recorder(calls, "parent")])
    async def parent() -> None:
        await child()

    async with Runtime() as rt:
        h = await rt.submit(parent)
        with pytest.raises(CancelledRun, match="child gives up"):
            await h.result()
        (run,) = await rt.list_flow_runs(flow_name="child")
        states = [s.name for s in await rt.read_states(run.id)]
        assert states == ["Pending", "Running", "Cancelling", "Cancelled"]
    assert calls == ["child:Cancelling", "parent:Failed"]


async def test_c99_a_child_returning_crashed_runs_its_hook_then_the_parents_failure() -> None:
    """C99: a child returning Crashed runs its on_crashed, then the parent's on_failure."""
    calls: list[str] = []

    @flow(on_crashed=[recorder(calls, "child")])
    async def child() -> State:
        return Crashed(message="child crashed")

    @flow(on_failure=[recorder(calls, "parent")], on_crashed=[recorder(calls, "never")])
    async def parent() -> None:
        await child()

    async with Runtime() as rt:
        h = await rt.submit(parent)
        with pytest.raises(CrashedRun, match="child crashed"):
            await h.result()
        assert (await h.wait()).is_failed()
        (run,) = await rt.list_flow_runs(flow_name="child")
        assert [s.name for s in await rt.read_states(run.id)] == ["Pending", "Running", "Crashed"]
    assert calls == ["child:Crashed", "parent:Failed"]
