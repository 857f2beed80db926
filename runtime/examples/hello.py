"""A small example: an async flow that fans out to sub-flows and sums their results."""

from __future__ import annotations

import anyio

from runtime import flow


@flow(retries=1)
async def square(x: int) -> int:
    """One unit of work."""
    await anyio.sleep(0.01)
    return x * x


@flow(log_prints=True)
async def hello(n: int = 10) -> int:
    """Square 0..n-1 concurrently, each in its own flow run, and return the sum."""
    results: list[int] = []

    async def one(i: int) -> None:
        results.append(await square(i))

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    total = sum(results)
    print(f"sum of squares below {n} is {total}")  # log_prints: goes to the run's logger
    return total
