"""`allow_failure(upstream)`: a downstream run that starts although its upstream failed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from runtime import (
    AllowFailure,
    CancelledRun,
    Completed,
    Failed,
    FlowRunHandle,
    Running,
    Runtime,
    allow_failure,
    flow,
    get_run_context,
)
from tests._helpers import names

pytestmark = pytest.mark.anyio


@flow
async def boom() -> int:
    raise ValueError("upstream broke")


@flow
async def one() -> int:
    return 1


@flow
async def echo(x: Any) -> Any:
    return x


async def test_c109_a_failed_upstream_reaches_the_child_as_its_exception() -> None:
    """C109: a subflow given allow_failure(failed upstream) runs and receives its exception."""

    @flow
    async def parent() -> Any:
        up = await get_run_context().runtime.submit(boom)
        return await echo(allow_failure(up))

    async with Runtime() as rt:
        h = await rt.submit(parent)
        received = await h.result()
        assert isinstance(received, ValueError) and str(received) == "upstream broke"
        (up_run,) = await rt.list_flow_runs(flow_name="boom")
        assert up_run.state is not None and up_run.state.is_failed()
        (child,) = await rt.list_flow_runs(flow_name="echo")
        assert child.parent_flow_run_id == h.id
        assert await names(rt, child.id) == ["Pending", "Running", "Completed"]
        assert await names(rt, h.id) == ["Pending", "Running", "Completed"]


async def test_c109_allow_failure_in_wait_for_only_waits_for_the_end() -> None:
    """C109 (wait_for form): the downstream starts once the upstream ended, however it ended."""
    async with Runtime() as rt:
        up = await rt.submit(boom)
        state = await one(wait_for=[allow_failure(up)], return_state=True)  # type: ignore[call-arg]
        assert state.is_completed() and state.data == 1
        assert (await up.wait()).is_failed()  # it had ended before the downstream started


async def test_c110_without_allow_failure_a_failed_upstream_still_fails_the_run() -> None:
    """C110/W4: without allow_failure a failed upstream fails the run from Pending, never stuck."""
    async with Runtime() as rt:
        up = await rt.submit(boom)
        as_parameter = await rt.submit(echo, up)
        state = await as_parameter.wait()
        assert state.is_failed() and up.flow_run.name in (state.message or "")
        assert await names(rt, as_parameter.id) == ["Pending", "Failed"]
        waited = await one(wait_for=[up], return_state=True)  # type: ignore[call-arg]
        assert waited.is_failed() and "wait_for" in (waited.message or "")


async def test_allow_failure_passes_values_and_errors_of_every_ending_in_place() -> None:
    """Completed upstreams give their value, cancelled ones a CancelledRun, nested in lists too."""
    started = anyio.Event()

    @flow
    async def parked() -> None:
        started.set()
        await anyio.sleep_forever()

    async with Runtime() as rt:
        ok, bad, cancelled = await rt.submit(one), await rt.submit(boom), await rt.submit(parked)
        await started.wait()
        await cancelled.cancel()
        values = [allow_failure(ok), allow_failure(bad), allow_failure(cancelled), ok]
        received = await (await rt.submit(echo, values)).result()
        assert received[0] == 1 and received[3] == 1
        assert isinstance(received[1], ValueError)
        assert isinstance(received[2], CancelledRun)


async def test_allow_failure_of_a_final_state() -> None:
    """A final State can be wrapped too: its data, or its exception, is passed on."""
    error = KeyError("k")
    async with Runtime() as rt:
        assert await (await rt.submit(echo, allow_failure(Completed(data=5)))).result() == 5
        got = await (await rt.submit(echo, allow_failure(Failed(data=error)))).result()
        assert got is error


async def test_allow_failure_refuses_what_is_not_an_upstream() -> None:
    """Wrapping anything but a run handle or a final State is a clear error at once."""
    with pytest.raises(TypeError, match="takes a flow run handle"):
        allow_failure(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got Flow"):
        allow_failure(one)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="final State"):
        allow_failure(Running())
    async with Runtime() as rt:
        h = await rt.submit(one)
        wrapped = allow_failure(h)
        assert isinstance(wrapped, AllowFailure) and isinstance(wrapped.upstream, FlowRunHandle)


async def test_an_unstreamed_generator_upstream_is_consumed_not_waited_on_for_ever() -> None:
    """A generator run given as an upstream that nobody streams passes on its values."""

    @flow
    async def numbers() -> AsyncIterator[int]:
        yield 1
        yield 2

    async with Runtime() as rt:
        up = await rt.submit(numbers)
        with anyio.fail_after(5):
            assert await (await rt.submit(echo, up)).result() == [1, 2]
