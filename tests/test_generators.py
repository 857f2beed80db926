"""Generator flows, sync and async: values as they come, and how the run ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator

import anyio
import pytest

from runtime import FlowRunTimeoutError, Runtime, StateType, flow, get_run_context
from tests._helpers import names

pytestmark = pytest.mark.anyio


@flow
async def count_async(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


@flow
def count_sync(n: int) -> Iterator[int]:
    yield from range(n)


@flow
async def fails_after_one() -> AsyncIterator[int]:
    yield 1
    raise ValueError("generator broke")


@pytest.mark.parametrize("gen", [count_async, count_sync], ids=["async", "sync"])
async def test_values_stream_as_they_come_and_the_run_completes(gen: object) -> None:
    async with Runtime() as rt:
        h = await rt.submit(gen, 4)  # type: ignore[arg-type]
        seen = [value async for value in h.stream()]
        assert seen == [0, 1, 2, 3]
        assert (await h.wait()).is_completed()
        assert await names(rt, h.id) == ["Pending", "Running", "Completed"]


async def test_the_generator_advances_only_as_the_consumer_takes_values() -> None:
    produced: list[int] = []

    @flow
    async def tracked() -> AsyncIterator[int]:
        for i in range(3):
            produced.append(i)
            yield i

    async with Runtime() as rt:
        h = await rt.submit(tracked)
        stream = h.stream()
        assert await stream.__anext__() == 0
        await anyio.wait_all_tasks_blocked()
        assert produced == [0, 1]  # the second value waits for the consumer
        assert [v async for v in stream] == [1, 2]


async def test_a_raising_generator_fails_the_run_and_the_consumer_sees_the_error() -> None:
    async with Runtime() as rt:
        h = await rt.submit(fails_after_one)
        seen: list[int] = []
        with pytest.raises(ValueError, match="generator broke"):
            async for value in h.stream():
                seen.append(value)
        assert seen == [1]
        assert (await h.wait()).is_failed()


@pytest.mark.parametrize("gen", [count_async, count_sync], ids=["async", "sync"])
async def test_stopping_early_cancels_the_run(gen: object) -> None:
    async with Runtime() as rt:
        h = await rt.submit(gen, 100)  # type: ignore[arg-type]
        stream = h.stream()
        async for value in stream:
            if value == 2:
                break
        await stream.aclose()
        state = await h.wait()
        assert state.is_cancelled()
        assert state.message == (
            "The consumer stopped iterating before the generator was exhausted."
        )
        assert await names(rt, h.id) == ["Pending", "Running", "Cancelling", "Cancelled"]


async def test_the_timeout_does_not_count_the_consumers_time() -> None:
    @flow(timeout_seconds=0.2)
    async def quick_values() -> AsyncIterator[int]:
        for i in range(3):
            yield i

    async with Runtime() as rt:
        h = await rt.submit(quick_values)
        got = []
        async for value in h.stream():
            got.append(value)
            await anyio.sleep(0.15)  # 0.45 s of consumer time in all, past the timeout
        assert got == [0, 1, 2]
        assert (await h.wait()).is_completed()


async def test_the_generators_own_time_is_timed_out() -> None:
    @flow(timeout_seconds=0.1)
    async def slow_values() -> AsyncIterator[int]:
        yield 1
        await anyio.sleep_forever()
        yield 2

    async with Runtime() as rt:
        h = await rt.submit(slow_values)
        got = []
        with pytest.raises(FlowRunTimeoutError):
            async for value in h.stream():
                got.append(value)
        assert got == [1]
        assert (await h.wait()).name == "TimedOut"


async def test_result_of_an_unconsumed_generator_run_collects_its_values() -> None:
    async with Runtime() as rt:
        assert await (await rt.submit(count_async, 3)).result() == [0, 1, 2]


async def test_direct_iteration_inside_a_runtime() -> None:
    async with Runtime():
        assert [v async for v in count_async(3)] == [0, 1, 2]  # type: ignore[attr-defined]


async def test_direct_async_iteration_outside_a_runtime() -> None:
    assert [v async for v in count_async(2)] == [0, 1]  # type: ignore[attr-defined]


def test_direct_sync_iteration_from_sync_code() -> None:
    assert list(count_sync(3)) == [0, 1, 2]  # type: ignore[call-overload]
    partial = count_sync(100)
    assert next(partial) == 0  # type: ignore[call-overload]
    partial.close()  # type: ignore[attr-defined]


async def state_type(rt: Runtime, run_id: object) -> StateType | None:
    state = (await rt.read_flow_run(run_id)).state  # type: ignore[arg-type]
    return state.type if state is not None else None


def _step(gen: Iterator[int]) -> tuple[str, object]:
    """One `next()` from a worker thread (StopIteration cannot cross into the event loop)."""
    try:
        return "yielded", next(gen)
    except StopIteration as stop:
        return "returned", stop.value


async def test_c116_next_on_a_sync_generator_flow_running_then_completed() -> None:
    """C116: next() yields 1, 2, then StopIteration(2); RUNNING at a yield, COMPLETED at the end.

    Our generator runs one value ahead of its consumer (it waits at the next yield, not the
    last one), so once the last value is taken the run may already be Completed.
    """
    run_ids: list[object] = []

    @flow
    def one_two() -> Generator[int, None, int]:
        run_ids.append(get_run_context().flow_run.id)
        yield 1
        yield 2
        return 2

    async with Runtime() as rt:  # the default store, which direct sync calls use too
        gen = one_two()  # type: ignore[call-overload]
        assert await anyio.to_thread.run_sync(_step, gen) == ("yielded", 1)
        (run_id,) = run_ids
        assert await state_type(rt, run_id) is StateType.RUNNING  # suspended at a yield
        assert await anyio.to_thread.run_sync(_step, gen) == ("yielded", 2)
        assert await anyio.to_thread.run_sync(_step, gen) == ("returned", 2)
        assert await names(rt, run_id) == ["Pending", "Running", "Completed"]


_ABANDONS_A_GENERATOR = """
import threading

import anyio
from runtime import flow

@flow
def one_two():
    yield 1
    yield 2

kept = []

async def main():
    values = one_two()
    for _ in range(2):
        await anyio.to_thread.run_sync(next, values)
    kept.append(values)  # never finished nor closed: left to interpreter exit
    while any(t.name.startswith("flow-run") for t in threading.enumerate()):
        await anyio.sleep(0.01)  # the run completes meanwhile, in the background

anyio.run(main, backend="trio")
"""


def test_a_direct_generator_left_unfinished_does_not_hang_interpreter_exit() -> None:
    """A half-consumed direct iteration is closed at exit, not waited on in a frozen thread."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _ABANDONS_A_GENERATOR], timeout=15, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()
