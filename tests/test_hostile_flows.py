"""Flows that swallow cancellation: after `cancel_grace` the run's final state is still written,
the attempt is abandoned, and neither the runtime nor the event loop waits for it."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import anyio
import pytest

from runtime import FlowRunTimeoutError, Runtime, StateType, flow
from tests._arrivals import Arrivals

pytestmark = pytest.mark.anyio

GRACE = 0.2
HANG = 60  # only against a hang: each test here hung for ever before runs could be abandoned


@flow(timeout_seconds=0.2)
async def swallows_with_timeout() -> None:
    """The issue's flow: catches BaseException in a loop with an await in it."""
    while True:
        try:  # noqa: SIM105 - the hostile code as users write it
            await anyio.sleep(0.05)
        except BaseException:
            pass


async def test_a_flow_swallowing_cancellation_still_times_out() -> None:
    with anyio.fail_after(HANG):
        async with Runtime(cancel_grace=GRACE) as rt:
            h = await rt.submit(swallows_with_timeout)
            state = await h.wait()
            assert state.name == "TimedOut"
            with pytest.raises(FlowRunTimeoutError):
                await h.result()
        # Leaving returned: nothing waits for the abandoned attempt.
    run = await rt.store.read_flow_run(h.id)
    assert run.state is not None and run.state.name == "TimedOut"


async def test_cancelling_a_flow_that_swallows_cancellation() -> None:
    arrived = Arrivals(1)

    @flow
    async def swallows() -> None:
        arrived.arrive()
        while True:
            try:  # noqa: SIM105 - the hostile code as users write it
                await anyio.sleep(0.05)
            except BaseException:
                pass

    with anyio.fail_after(HANG):
        async with Runtime(cancel_grace=GRACE) as rt:
            h = await rt.submit(swallows)
            await arrived.wait()
            assert await h.cancel()
    run = await rt.store.read_flow_run(h.id)
    assert run.state is not None and run.state.type is StateType.CANCELLED


def _many_runs_some_swallowing(n: int, arrived: Arrivals) -> tuple[object, object]:
    """The issue's mix: n running runs, one in ten swallowing cancellation."""

    @flow
    async def polite(i: int) -> None:
        arrived.arrive()
        await anyio.sleep_forever()

    @flow
    async def swallows(i: int) -> None:
        arrived.arrive()
        while True:
            try:  # noqa: SIM105 - the hostile code as users write it
                await anyio.sleep(0.05)
            except BaseException:
                pass

    return polite, swallows


async def test_shutdown_cancel_ends_runs_that_swallow_cancellation() -> None:
    n = 200
    arrived = Arrivals(n)
    polite, swallows = _many_runs_some_swallowing(n, arrived)
    with anyio.fail_after(HANG):
        async with Runtime(cancel_grace=GRACE) as rt:
            handles = [await rt.submit(swallows if i % 10 == 0 else polite, i) for i in range(n)]  # type: ignore[arg-type]
            await arrived.wait()
            await rt.shutdown(cancel=True)
            assert {(await h.wait()).type for h in handles} == {StateType.CANCELLED}
    stored = collections.Counter(
        [(await rt.store.read_flow_run(h.id)).state.type for h in handles]  # type: ignore[union-attr]
    )
    assert stored == {StateType.CANCELLED: n}


async def test_the_app_cancelling_the_runtime_crashes_runs_that_swallow_cancellation() -> None:
    n = 200
    arrived = Arrivals(n)
    polite, swallows = _many_runs_some_swallowing(n, arrived)
    with anyio.fail_after(HANG):
        with anyio.CancelScope() as app:
            async with Runtime(cancel_grace=GRACE) as rt:
                handles = [
                    await rt.submit(swallows if i % 10 == 0 else polite, i)  # type: ignore[arg-type]
                    for i in range(n)
                ]
                await arrived.wait()
                app.cancel()
                await anyio.sleep_forever()
    stored = collections.Counter(
        [(await rt.store.read_flow_run(h.id)).state.type for h in handles]  # type: ignore[union-attr]
    )
    assert stored == {StateType.CRASHED: n}


@flow(timeout_seconds=0.2)
async def swallowing_generator():  # type: ignore[no-untyped-def]
    yield 1
    while True:
        try:  # noqa: SIM105 - the hostile code as users write it
            await anyio.sleep(0.05)
        except BaseException:
            pass


async def test_a_generator_flow_swallowing_cancellation_still_times_out() -> None:
    with anyio.fail_after(HANG):
        async with Runtime(cancel_grace=GRACE) as rt:
            h = await rt.submit(swallowing_generator)
            got = []
            with pytest.raises(FlowRunTimeoutError):
                async for value in h.stream():
                    got.append(value)
            assert got == [1]
            assert (await h.wait()).name == "TimedOut"


async def test_a_generator_flow_swallowing_cancellation_ends_when_its_consumer_stops() -> None:
    @flow
    async def swallows_after_each_value():  # type: ignore[no-untyped-def]
        for i in range(3):
            try:  # noqa: SIM105 - the hostile code as users write it
                yield i
            except BaseException:
                pass
            while True:
                try:  # noqa: SIM105 - the hostile code as users write it
                    await anyio.sleep(0.05)
                except BaseException:
                    pass

    with anyio.fail_after(HANG):
        async with Runtime(cancel_grace=GRACE) as rt:
            h = await rt.submit(swallows_after_each_value)
            values = h.stream()
            assert await values.__anext__() == 0
            await values.aclose()  # stopping early cancels the run
            assert (await h.wait()).type is StateType.CANCELLED


async def test_the_event_loop_finishes_and_the_process_exits(anyio_backend: str) -> None:
    """In a process of its own: the issue's flows, then `anyio.run` must return and the process
    exit (an abandoned coroutine must hold neither the loop nor the interpreter's exit)."""
    script = Path(__file__).with_name("_hostile_child.py")
    with anyio.fail_after(HANG):
        done = await anyio.run_process([sys.executable, str(script), anyio_backend], check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, (out, done.stderr.decode()[-3000:])
    assert out.split() == ["timed-out", "shut-down", "app-cancelled", "returned"]
