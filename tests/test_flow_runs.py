"""The state history of every path a flow run can take, through the public API."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from runtime import (
    CancelledRun,
    FlowRunTimeoutError,
    ParameterTypeError,
    Runtime,
    StateType,
    check_cancelled,
    flow,
    get_run_context,
)
from tests._helpers import names

pytestmark = pytest.mark.anyio


@flow
async def add(x: int, y: int = 1) -> int:
    return x + y


@flow
def sync_add(x: int, y: int = 1) -> int:
    return x + y


async def test_success_history_and_result() -> None:
    async with Runtime() as rt:
        h = await rt.submit(add, 1, y=2)
        state = await h.wait()
        assert state.is_completed()
        assert await h.result() == 3
        assert await names(rt, h.id) == ["Pending", "Running", "Completed"]
        run = await rt.read_flow_run(h.id)
        assert run.run_count == 1
        assert run.parameters == {"x": 1, "y": 2}
        assert run.flow_name == "add"
        assert run.start_time is not None and run.end_time is not None


async def test_sync_flow_runs_in_a_worker_thread() -> None:
    seen: list[str] = []

    @flow
    def where() -> str:
        seen.append(threading.current_thread().name)
        return "ok"

    async with Runtime() as rt:
        h = await rt.submit(where)
        assert await h.result() == "ok"
        assert await names(rt, h.id) == ["Pending", "Running", "Completed"]
    assert seen and seen[0] != threading.main_thread().name


@pytest.mark.parametrize("is_async", [True, False], ids=["async", "sync"])
async def test_failure_history_and_error_reraised(is_async: bool) -> None:
    error = ValueError("boom")

    async def afn() -> None:
        raise error

    def sfn() -> None:
        raise error

    failing = flow(afn if is_async else sfn)
    async with Runtime() as rt:
        h = await rt.submit(failing)
        state = await h.wait()
        assert state.is_failed()
        assert state.message == "Flow run encountered an exception: ValueError: boom"
        with pytest.raises(ValueError, match="boom") as info:
            await h.result()
        assert info.value is error
        assert await names(rt, h.id) == ["Pending", "Running", "Failed"]


async def test_retries_history_delay_and_run_count() -> None:
    attempts: list[float] = []

    @flow(retries=2, retry_delay_seconds=0.2)
    async def flaky() -> str:
        attempts.append(anyio.current_time())
        if len(attempts) < 2:
            raise RuntimeError("first attempt fails")
        return "done"

    async with Runtime() as rt:
        h = await rt.submit(flaky)
        assert await h.result() == "done"
        assert await names(rt, h.id) == [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Running",
            "Completed",
        ]
        assert (await rt.read_flow_run(h.id)).run_count == 2
    assert attempts[1] - attempts[0] >= 0.2  # the delay is respected (fraction kept)


async def test_retries_exhausted_ends_failed_with_one_failure_hook() -> None:
    failures: list[str] = []

    @flow(retries=2, on_failure=[lambda f, r, s: failures.append(s.name)])
    async def always() -> None:
        raise RuntimeError("nope")

    async with Runtime() as rt:
        h = await rt.submit(always)
        assert (await h.wait()).is_failed()
        assert await names(rt, h.id) == [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Running",
            "AwaitingRetry",
            "Running",
            "Failed",
        ]
        assert (await rt.read_flow_run(h.id)).run_count == 3
    assert failures == ["Failed"]


async def test_timeout_async_flow_is_timed_out() -> None:
    @flow(timeout_seconds=0.1)
    async def slow() -> None:
        await anyio.sleep_forever()

    async with Runtime() as rt:
        h = await rt.submit(slow)
        state = await h.wait()
        assert state.is_failed() and state.name == "TimedOut"
        assert state.message == "Flow run exceeded timeout of 0.1 second(s)"
        with pytest.raises(FlowRunTimeoutError):
            await h.result()
        assert await names(rt, h.id) == ["Pending", "Running", "TimedOut"]


async def test_timeout_sync_flow_is_timed_out_at_its_deadline_not_when_the_thread_returns() -> None:
    release = threading.Event()
    stopped_early = threading.Event()

    @flow(timeout_seconds=0.1)
    def stuck() -> None:
        release.wait(30)
        try:
            check_cancelled()
        except FlowRunTimeoutError:
            stopped_early.set()
            raise

    async with Runtime() as rt:
        h = await rt.submit(stuck)
        state = await h.wait()  # returns while the thread is still blocked
        assert not release.is_set()
        assert state.name == "TimedOut"
        assert await names(rt, h.id) == ["Pending", "Running", "TimedOut"]
        release.set()
    # The abandoned thread saw the timeout through the cooperative check.
    assert await anyio.to_thread.run_sync(stopped_early.wait, 10)


async def test_run_finishing_just_before_its_timeout_stays_completed() -> None:
    @flow(timeout_seconds=0.3)
    async def quick() -> int:
        await anyio.sleep(0.2)
        return 1

    async with Runtime() as rt:
        h = await rt.submit(quick)
        assert await h.result() == 1
        await anyio.sleep(0.2)  # past the deadline: nothing may overwrite Completed
        assert await names(rt, h.id) == ["Pending", "Running", "Completed"]


async def test_external_cancel_history_and_hook() -> None:
    started = anyio.Event()
    cancelling: list[str] = []

    @flow(on_cancellation=[lambda f, r, s: cancelling.append(s.name)])
    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    async with Runtime() as rt:
        h = await rt.submit(forever)
        await started.wait()
        assert await h.cancel() is True
        state = await h.wait()
        assert state.is_cancelled()
        with pytest.raises(CancelledRun):
            await h.result()
        assert await names(rt, h.id) == ["Pending", "Running", "Cancelling", "Cancelled"]
    assert cancelling == ["Cancelling"]


async def test_cancel_of_a_finished_run_reports_it_lost() -> None:
    async with Runtime() as rt:
        h = await rt.submit(add, 1)
        await h.wait()
        assert await rt.cancel(h.id) is False
        assert await names(rt, h.id) == ["Pending", "Running", "Completed"]


async def test_cancel_of_a_sync_flow_abandons_its_thread() -> None:
    started = threading.Event()
    release = threading.Event()

    @flow
    def blocking() -> None:
        started.set()
        release.wait(30)

    async with Runtime() as rt:
        h = await rt.submit(blocking)
        await anyio.to_thread.run_sync(started.wait)
        assert await h.cancel() is True
        assert await names(rt, h.id) == ["Pending", "Running", "Cancelling", "Cancelled"]
        release.set()


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit], ids=["KI", "SystemExit"])
@pytest.mark.parametrize("is_async", [True, False], ids=["async", "sync"])
async def test_base_exception_in_flow_crashes_the_run(
    error: type[BaseException], is_async: bool
) -> None:
    crashed: list[str] = []

    async def afn() -> None:
        raise error()

    def sfn() -> None:
        raise error()

    crashing = flow(afn if is_async else sfn, on_crashed=[lambda f, r, s: crashed.append(s.name)])
    async with Runtime() as rt:
        h = await rt.submit(crashing)
        state = await h.wait()
        assert state.is_crashed()
        assert await names(rt, h.id) == ["Pending", "Running", "Crashed"]
        with pytest.raises(error):
            await h.result()
    expected = {
        KeyboardInterrupt: "Execution was aborted by an interrupt signal.",
        SystemExit: "Execution was aborted by Python system exit call.",
    }[error]
    assert state.message == expected
    assert crashed == ["Crashed"]


class HostileExit(BaseException):
    """A BaseException that is neither a cancellation nor an Exception."""


async def test_base_exception_inside_an_exception_group_crashes_the_run() -> None:
    # (Not KeyboardInterrupt: asyncio re-raises that from any task straight out of the loop.)
    @flow
    async def grouped() -> None:
        async def boom() -> None:
            raise HostileExit("gone")

        async with anyio.create_task_group() as tg:
            tg.start_soon(boom)
            await anyio.sleep_forever()

    async with Runtime() as rt:
        h = await rt.submit(grouped)
        state = await h.wait()
        assert state.is_crashed()
        assert state.message == (
            "Execution was interrupted by an unexpected exception: HostileExit: gone"
        )


async def test_invalid_parameters_fail_without_calling_the_function() -> None:
    called: list[int] = []

    @flow
    async def typed(count: int) -> int:
        called.append(count)
        return count

    async with Runtime() as rt:
        h = await rt.submit(typed, "not a number")
        state = await h.wait()
        assert state.is_failed()
        assert state.message is not None and "count" in state.message
        assert "Validation of flow parameters failed" in state.message
        with pytest.raises(ParameterTypeError, match="count"):
            await h.result()
        assert await names(rt, h.id) == ["Pending", "Failed"]
        # Valid strings are coerced to the hinted type.
        assert await (await rt.submit(typed, "42")).result() == 42
    assert called == [42]


async def test_bad_call_signature_raises_before_any_run_exists() -> None:
    async with Runtime() as rt:
        with pytest.raises(ParameterTypeError):
            await rt.submit(add, 1, 2, 3)
        assert await rt.list_flow_runs() == []


async def test_parameters_bind_by_position_keyword_and_default_in_signature_order() -> None:
    @flow
    async def three(a: int, b: str, c: float) -> tuple[int, str, float]:
        return a, b, c

    @flow
    async def defaults(a: int, b: int = 2, *rest: int, c: bool = True) -> tuple[Any, ...]:
        return a, b, rest, c

    async with Runtime() as rt:
        by_position = await rt.submit(three, 1, "x", 2.5)
        by_keyword = await rt.submit(three, c=2.5, b="x", a=1)
        for h in (by_position, by_keyword):
            assert await h.result() == (1, "x", 2.5)
            assert list(h.flow_run.parameters.items()) == [("a", 1), ("b", "x"), ("c", 2.5)]
        # Exact scalars pass as they are; others are converted where lossless.
        assert await (await rt.submit(three, "1", "y", 1)).result() == (1, "y", 1.0)
        h = await rt.submit(defaults, 1, 5, 6, 7, c=False)
        assert await h.result() == (1, 5, (6, 7), False)
        assert await (await rt.submit(defaults, 1)).result() == (1, 2, (), True)
        for bad_call in [(1, "x"), (1, "x", 2.5, 4)]:
            with pytest.raises(ParameterTypeError):
                await rt.submit(three, *bad_call)
        with pytest.raises(ParameterTypeError):
            await rt.submit(three, 1, "x", c=2.5, a=2)


async def test_run_name_template_callable_and_error() -> None:
    templated = add.with_options(flow_run_name="add-{x}")
    called = add.with_options(flow_run_name=lambda: "by-callable")
    broken = add.with_options(flow_run_name="add-{missing}")
    async with Runtime() as rt:
        assert (await rt.submit(templated, 7)).flow_run.name == "add-7"
        assert (await rt.submit(called, 7)).flow_run.name == "by-callable"
        h = await rt.submit(broken, 7)
        state = await h.wait()
        assert state.is_failed()
        assert state.message is not None and "Could not name the flow run" in state.message
        assert "missing" in state.message


async def test_list_flow_runs_filters_by_state_and_flow_name() -> None:
    @flow(name="etl")
    async def etl(fail: bool) -> None:
        if fail:
            raise RuntimeError("x")

    async with Runtime() as rt:
        for fail in (True, False, True):
            await (await rt.submit(etl, fail)).wait()
        await (await rt.submit(add, 1)).wait()
        failed = await rt.list_flow_runs(state=StateType.FAILED, flow_name="etl")
        assert len(failed) == 2 and {r.flow_name for r in failed} == {"etl"}
        assert len(await rt.list_flow_runs(flow_name="etl")) == 3
        assert len(await rt.list_flow_runs(state=StateType.COMPLETED)) == 2


async def test_run_context_is_visible_inside_the_run() -> None:
    @flow
    async def introspect(x: int) -> tuple[str, dict[str, object]]:
        ctx = get_run_context()
        return ctx.flow_run.name, ctx.parameters

    async with Runtime() as rt:
        h = await rt.submit(introspect, 5)
        name, params = await h.result()
        assert name == h.flow_run.name and params == {"x": 5}
    with pytest.raises(RuntimeError, match="outside of a flow run"):
        get_run_context()


async def test_returned_failed_state_fails_and_retries() -> None:
    from runtime import Failed

    attempts: list[int] = []

    @flow(retries=1)
    async def returns_failed() -> object:
        attempts.append(1)
        return Failed(message="told to fail")

    async with Runtime() as rt:
        h = await rt.submit(returns_failed)
        state = await h.wait()
        assert state.is_failed() and state.message == "told to fail"
        assert len(attempts) == 2
        assert await names(rt, h.id) == [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Running",
            "Failed",
        ]
