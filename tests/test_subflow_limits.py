"""Subflows under concurrency_limit and thread_limit: a run waiting for its subflows never
starves them (they run under its places), whatever the nesting, kinds and limits."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest

from runtime import Runtime, flow, get_run_context

pytestmark = pytest.mark.anyio

# Every test here hung for ever before subflows shared their parent's places: fail instead.
HANG = 30


@flow
async def async_leaf(x: int) -> int:
    return x


@flow
def sync_leaf(x: int) -> int:
    return x


async def test_async_parents_filling_concurrency_limit_get_their_subflows_run() -> None:
    @flow
    async def parent(x: int) -> int:
        return await async_leaf(x) + 1

    with anyio.fail_after(HANG):
        async with Runtime(concurrency_limit=5) as rt:
            handles = [await rt.submit(parent, i) for i in range(10)]
            assert [await h.result() for h in handles] == [i + 1 for i in range(10)]


async def test_sync_parents_filling_thread_limit_get_their_subflows_run() -> None:
    # Every parent holds its thread before any calls its subflow: the thread limit is full.
    together = threading.Barrier(4)

    @flow
    def parent(x: int) -> int:
        together.wait(HANG)
        return sync_leaf(x) + 1

    with anyio.fail_after(HANG):
        async with Runtime(thread_limit=4) as rt:
            handles = [await rt.submit(parent, i) for i in range(4)]
            assert [await h.result() for h in handles] == [1, 2, 3, 4]


async def test_a_subflow_gives_its_parents_place_back_when_the_tree_ends() -> None:
    @flow
    async def parent() -> int:
        return await async_leaf(1)

    with anyio.fail_after(HANG):
        async with Runtime(concurrency_limit=1, thread_limit=1) as rt:
            for _ in range(3):  # each tree needs the one place the previous tree held
                assert await (await rt.submit(parent)).result() == 1
                assert await (await rt.submit(sync_leaf, 2)).result() == 2


@pytest.mark.parametrize("kinds", ["sas", "asa", "sss", "aaa", "ssa"])
async def test_nesting_three_deep_of_mixed_kinds_under_tight_limits(kinds: str) -> None:
    """Top-level runs fill both limits; each calls a subflow that calls another (s: sync,
    a: async, at each level). Sync code calls an async subflow through the run's loop token,
    async code a sync one from a worker thread."""
    together = threading.Barrier(2)

    def make(kind: str, below: Any, top: bool) -> Any:
        below_async = below is not None and below.isasync
        if kind == "s":

            def body(x: int) -> int:
                if top:
                    together.wait(HANG)  # both top-level threads hold the two thread slots
                if below is None:
                    return x + 1
                if below_async:
                    token = get_run_context().token
                    return int(anyio.from_thread.run(below, x, token=token)) + 1
                return int(below(x)) + 1

            return flow(name=f"sync-{len(kinds)}")(body)

        async def abody(x: int) -> int:
            if below is None:
                return x + 1
            if below_async:
                return int(await below(x)) + 1
            return int(await anyio.to_thread.run_sync(below, x)) + 1

        return flow(name=f"async-{len(kinds)}")(abody)

    leaf = make(kinds[2], None, top=False)
    middle = make(kinds[1], leaf, top=False)
    top_flow = make(kinds[0], middle, top=True)
    with anyio.fail_after(HANG):
        async with Runtime(concurrency_limit=2, thread_limit=2) as rt:
            handles = [await rt.submit(top_flow, i) for i in range(2)]
            assert [await h.result() for h in handles] == [3, 4]


async def test_concurrent_subflows_in_a_task_group_under_a_limit() -> None:
    @flow
    async def fan_out(n: int) -> list[int]:
        results = [0] * n

        async def one(i: int) -> None:
            results[i] = await async_leaf(i) + await anyio.to_thread.run_sync(sync_leaf, i)

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
        return results

    with anyio.fail_after(HANG):
        async with Runtime(concurrency_limit=1, thread_limit=1) as rt:
            assert await (await rt.submit(fan_out, 5)).result() == [0, 2, 4, 6, 8]


async def test_concurrent_sync_subflows_under_a_blocked_sync_ancestor() -> None:
    """sync -> async -> five sync subflows at once, with one thread slot: the blocked top-level
    thread lends its slot down to all of them."""

    @flow
    async def middle(n: int) -> list[int]:
        results = [0] * n

        async def one(i: int) -> None:
            results[i] = await anyio.to_thread.run_sync(_call_sync_leaf, i)

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
        return results

    @flow
    def top(n: int) -> list[int]:
        result: list[int] = anyio.from_thread.run(middle, n, token=get_run_context().token)
        return result

    with anyio.fail_after(HANG):
        async with Runtime(concurrency_limit=1, thread_limit=1) as rt:
            assert await (await rt.submit(top, 5)).result() == [0, 1, 2, 3, 4]


def _call_sync_leaf(i: int) -> int:
    result: int = sync_leaf(i)
    return result
