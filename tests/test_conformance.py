"""Prefect's flow-engine scenarios (reference section 4) and its weak points we must not have (5.1).

Each test names the scenario (C<n>) or weak point (W<n>) it ports.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from runtime import (
    CancelledRun,
    Cancelling,
    Completed,
    Failed,
    FlowRunTimeoutError,
    ParameterTypeError,
    Paused,
    Runtime,
    State,
    UnfinishedRun,
    flow,
    get_run_context,
)

pytestmark = pytest.mark.anyio


async def history(rt: Runtime, run_id: Any) -> list[str]:
    return [s.name for s in await rt.read_states(run_id)]


# -- basic run and definition --------------------------------------------------------------
async def test_c3_c5_return_state_and_result_without_raising() -> None:
    @flow
    async def fails() -> None:
        raise ValueError("xyz")

    async with Runtime() as rt:
        state = await fails(return_state=True)  # type: ignore[call-arg]
        assert state.is_failed()
        (run,) = await rt.list_flow_runs(flow_name="fails")
        assert run.state is not None and run.state.is_failed()
        error = await (await rt.submit(fails)).result(raise_on_failure=False)
        assert isinstance(error, ValueError) and str(error) == "xyz"


def test_c8_c9_c10_names_and_reserved_parameters() -> None:
    assert flow(lambda: None).name == "unknown-lambda"

    def my_flow_fn() -> None:
        pass

    assert flow(my_flow_fn).name == "my-flow-fn"
    with pytest.raises(ValueError, match="forbidden"):
        flow(my_flow_fn, name="a/b")
    with pytest.raises(TypeError):
        flow({})  # type: ignore[call-overload]

    def reserved(return_state: bool) -> None:
        pass

    with pytest.raises(ValueError, match="return_state"):
        flow(reserved)


def test_c14_with_options_overrides_and_inherits() -> None:
    @flow(retries=3, flow_run_name="n-{x}", timeout_seconds=5)
    def base(x: int) -> int:
        return x

    changed = base.with_options(timeout_seconds=0, retries=0)
    assert changed.timeout_seconds is None and changed.retries == 0
    assert changed.flow_run_name == "n-{x}"
    assert base.retries == 3
    with pytest.raises(TypeError, match="unknown flow option"):
        base.with_options(nope=1)


async def test_c16_returned_completed_state_keeps_its_name_and_data() -> None:
    @flow
    async def custom() -> State:
        return Completed(name="Custom", message="m", data=5)

    async with Runtime() as rt:
        h = await rt.submit(custom)
        assert await h.result() == 5
        state = await h.wait()
        assert state.name == "Custom" and state.message == "m" and state.is_completed()


# -- parameters ----------------------------------------------------------------------------
async def test_c17_c18_binding_like_python_with_defaults_recorded() -> None:
    @flow
    async def mixed(*args: int, x: int, z: int = 3, **kwargs: int) -> Any:
        return args, x, z, kwargs

    @flow
    async def defaults(x: int, y: int, z: int = 3) -> int:
        return x + y + z

    async with Runtime() as rt:
        assert await (await rt.submit(mixed, 1, 2, x=5, y=6)).result() == ((1, 2), 5, 3, {"y": 6})
        h = await rt.submit(defaults, 1, 2)
        assert await h.result() == 6
        assert (await rt.read_flow_run(h.id)).parameters == {"x": 1, "y": 2, "z": 3}


async def test_c20_c23_coercion_and_opting_out() -> None:
    @flow
    async def ints(values: list[int]) -> list[int]:
        return values

    @flow(validate_parameters=False)
    async def raw(x: int) -> Any:
        return x

    async with Runtime() as rt:
        assert await (await rt.submit(ints, ["2", "3"])).result() == [2, 3]
        assert await (await rt.submit(raw, "foo")).result() == "foo"


async def test_c21_c22_invalid_parameters_fail_once_without_retry() -> None:
    failures: list[str] = []

    @flow(retries=2, on_failure=[lambda f, r, s: failures.append(s.name)])
    async def typed(x: int) -> int:
        return x

    async with Runtime() as rt:
        h = await rt.submit(typed, "nope")
        with pytest.raises(ParameterTypeError, match="Flow run received invalid parameters"):
            await h.result()
        run = await rt.read_flow_run(h.id)
        assert run.run_count == 0 and run.start_time == run.end_time
        assert await history(rt, h.id) == ["Pending", "Failed"]
    assert failures == ["Failed"]


# -- return values and states ------------------------------------------------------------------
async def test_c29_returned_failed_state_with_data() -> None:
    @flow
    async def manual() -> State:
        return Failed(message="Test returned state", data="hello!")

    async with Runtime() as rt:
        h = await rt.submit(manual)
        state = await h.wait()
        assert state.is_failed() and state.message == "Test returned state"
        assert state.data == "hello!"


async def test_c34_returned_paused_leaves_the_run_paused() -> None:
    @flow
    async def pauses() -> State:
        return Paused()

    async with Runtime() as rt:
        h = await rt.submit(pauses)
        assert (await h.wait()).is_paused()
        with pytest.raises(UnfinishedRun):
            await h.result()


async def test_c35_c36_returned_cancelled_and_cancelling_end_cancelled() -> None:
    @flow
    async def cancelling() -> State:
        return Cancelling(message="stop")

    async with Runtime() as rt:
        h = await rt.submit(cancelling)
        assert (await h.wait()).is_cancelled()  # never stuck in Cancelling (Prefect: for ever)
        assert await history(rt, h.id) == ["Pending", "Running", "Cancelling", "Cancelled"]
        with pytest.raises(CancelledRun):
            await h.result()


# -- retries and timeouts ------------------------------------------------------------------------
async def test_c55_a_timed_out_attempt_is_retried() -> None:
    attempts = 0

    @flow(retries=1, timeout_seconds=0.1)
    async def slow_then_fast() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await anyio.sleep_forever()
        return "second"

    async with Runtime() as rt:
        h = await rt.submit(slow_then_fast)
        assert await h.result() == "second"
        assert await history(rt, h.id) == [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Running",
            "Completed",
        ]


async def test_c57_the_name_callable_is_called_once_per_call() -> None:
    calls = 0

    def name() -> str:
        nonlocal calls
        calls += 1
        return f"named-{calls}"

    @flow(retries=3, flow_run_name=name)
    async def flaky() -> None:
        raise ValueError("x")

    async with Runtime() as rt:
        h = await rt.submit(flaky)
        await h.wait()
        assert h.flow_run.name == "named-1" and calls == 1


async def test_c65_a_user_timeout_error_is_timed_out() -> None:
    @flow
    async def mine() -> None:
        raise TimeoutError("mine")

    async with Runtime() as rt:
        state = await (await rt.submit(mine)).wait()
        assert state.name == "TimedOut"
        assert state.message == "Flow run failed due to timeout: TimeoutError('mine')"


# -- crashes -----------------------------------------------------------------------------------
async def test_c72_c73_an_enclosing_cancel_crashes_parent_and_child() -> None:
    started = anyio.Event()

    @flow
    async def child() -> None:
        started.set()
        await anyio.sleep_forever()

    @flow
    async def parent() -> None:
        await child()

    async with Runtime() as rt:
        async with anyio.create_task_group() as tg:
            tg.start_soon(parent)
            await started.wait()
            tg.cancel_scope.cancel()
        for name in ("parent", "child"):
            (run,) = await rt.list_flow_runs(flow_name=name)
            assert run.state is not None and run.state.is_crashed(), name
            assert run.state.message == "Execution was cancelled by the runtime environment."


async def test_w6_a_sync_flow_is_crashed_too_when_the_app_cancels_the_runtime() -> None:
    started = threading.Event()
    release = threading.Event()

    @flow
    def blocking() -> None:
        started.set()
        release.wait(30)

    rt = Runtime()
    with anyio.CancelScope() as app:
        async with rt:
            h = await rt.submit(blocking)
            await anyio.to_thread.run_sync(started.wait)
            app.cancel()
            await anyio.sleep_forever()
    release.set()
    assert await history_of_store(rt, h.id) == ["Pending", "Running", "Crashed"]


async def history_of_store(rt: Runtime, run_id: Any) -> list[str]:
    return [s.name for s in await rt.store.read_states(run_id)]


# -- hooks -------------------------------------------------------------------------------------
async def test_c95_hooks_see_the_runs_context() -> None:
    seen: list[bool] = []

    def hook(f: Any, run: Any, state: State) -> None:
        ctx = get_run_context()
        seen.append(ctx.flow is f and ctx.flow_run.id == run.id and run.state == state)

    @flow(on_completion=[hook], on_failure=[hook])
    async def ok() -> None:
        pass

    async with Runtime() as rt:
        await (await rt.submit(ok)).wait()
    assert seen == [True]


async def test_c96_a_partial_hook_and_a_raising_base_exception_hook() -> None:
    import functools

    calls: list[str] = []

    def tagged(f: Any, run: Any, state: State, *, tag: str) -> None:
        calls.append(tag)

    def interrupting(f: Any, run: Any, state: State) -> None:
        raise KeyboardInterrupt  # W11: must not escape and take the runtime down

    @flow(on_completion=[functools.partial(tagged, tag="p"), interrupting])
    async def ok() -> int:
        return 1

    async with Runtime() as rt:
        assert await (await rt.submit(ok)).result() == 1
        assert await (await rt.submit(ok)).result() == 1
    assert calls == ["p", "p"]


# -- weak points ---------------------------------------------------------------------------------
async def test_w5_in_process_cancel_ends_cancelled_promptly_with_one_hook() -> None:
    started = anyio.Event()
    cancelling: list[str] = []
    after_cancel: list[str] = []

    @flow(on_cancellation=[lambda f, r, s: cancelling.append(s.name)])
    async def busy() -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            after_cancel.append("unwound")

    async with Runtime() as rt:
        h = await rt.submit(busy)
        await started.wait()
        with anyio.fail_after(5):
            assert await h.cancel() is True
        assert await history(rt, h.id) == ["Pending", "Running", "Cancelling", "Cancelled"]
    assert cancelling == ["Cancelling"]
    assert after_cancel == ["unwound"]  # the body stopped: it did not run on


async def test_w7_sync_timeout_recorded_at_the_deadline_not_when_the_thread_returns() -> None:
    release = threading.Event()

    @flow(timeout_seconds=0.1)
    def sleeper() -> None:
        release.wait(30)

    async with Runtime() as rt:
        h = await rt.submit(sleeper)
        with anyio.fail_after(5):
            state = await h.wait()
        assert not release.is_set() and state.name == "TimedOut"
        with pytest.raises(FlowRunTimeoutError):
            await h.result()
        release.set()


# -- subflows, generators, naming (section 4, continued) ------------------------------------
async def test_c104_c105_gathered_and_recursive_subflows() -> None:
    @flow
    async def ident(x: int) -> int:
        return x

    @flow
    async def recurse(n: int) -> int:
        return n if n <= 1 else n + await recurse(n - 1)

    @flow
    async def gather_five() -> list[int]:
        results: dict[int, int] = {}

        async def one(i: int) -> None:
            results[i] = await ident(i)

        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(one, i)
        return [results[i] for i in range(5)]

    async with Runtime() as rt:
        assert await (await rt.submit(gather_five)).result() == [0, 1, 2, 3, 4]
        assert await (await rt.submit(recurse, 5)).result() == 15
        assert len(await rt.list_flow_runs(flow_name="recurse")) == 5


async def test_c118_c119_generator_retries_emit_again_and_a_clean_finish_does_not() -> None:
    from collections.abc import AsyncIterator

    @flow(retries=2)
    async def always_fails() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise ValueError("after two")

    @flow(retries=2)
    async def fine() -> AsyncIterator[int]:
        yield 1
        yield 2

    async with Runtime() as rt:
        seen: list[int] = []
        with pytest.raises(ValueError, match="after two"):
            async for value in (await rt.submit(always_fails)).stream():
                seen.append(value)
        assert seen == [1, 2, 1, 2, 1, 2]
        h = await rt.submit(fine)
        assert [v async for v in h.stream()] == [1, 2]
        assert (await rt.read_flow_run(h.id)).run_count == 1


def test_c121_return_state_on_a_generator_flow_is_refused() -> None:
    from collections.abc import Iterator

    @flow
    def gen() -> Iterator[int]:
        yield 1

    with pytest.raises(ValueError, match="must be 'result'"):
        list(gen(return_state=True))  # type: ignore[call-overload]


async def test_c124_c128_name_templates_use_defaults_and_each_call_names_again() -> None:
    calls = 0

    def namer() -> str:
        nonlocal calls
        calls += 1
        return f"call-{calls}"

    @flow(flow_run_name="hi-{foo}-{bar}")
    async def greet(bar: str, foo: str = "one") -> None:
        pass

    async with Runtime() as rt:
        assert (await rt.submit(greet, "two")).flow_run.name == "hi-one-two"
        named = greet.with_options(flow_run_name=namer)
        first = await rt.submit(named, "x")
        second = await rt.submit(named, "y")
        assert (first.flow_run.name, second.flow_run.name) == ("call-1", "call-2")


async def test_c147_statements_after_an_expired_pause_never_run() -> None:
    from runtime import pause_flow_run

    after: list[str] = []

    @flow
    async def pauses() -> None:
        await pause_flow_run(timeout=0.05)
        after.append("ran")

    async with Runtime() as rt:
        assert (await (await rt.submit(pauses)).wait()).is_failed()
    assert after == []


async def test_c77_cancelling_a_parent_cancels_its_running_subflow() -> None:
    started = anyio.Event()
    hooks: list[str] = []

    @flow(on_cancellation=[lambda f, r, s: hooks.append("child")])
    async def child() -> None:
        started.set()
        await anyio.sleep_forever()

    @flow(on_cancellation=[lambda f, r, s: hooks.append("parent")])
    async def parent() -> None:
        await child()

    async with Runtime() as rt:
        h = await rt.submit(parent)
        await started.wait()
        assert await h.cancel() is True
        (run,) = await rt.list_flow_runs(flow_name="child")
        assert run.state is not None and run.state.is_cancelled()
        assert await history(rt, run.id) == ["Pending", "Running", "Cancelling", "Cancelled"]
    assert sorted(hooks) == ["child", "parent"]
