"""Generator flows, sync and async: values as they come, and how the run ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from runtime import FlowRunTimeoutError, Runtime, flow

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


async def names(rt: Runtime, run_id: object) -> list[str]:
    return [s.name for s in await rt.read_states(run_id)]  # type: ignore[arg-type]


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
