"""Flows for subprocess tests: one that finishes, one that waits until it is stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio

from runtime import flow

cancelled_hooks: list[str] = []


@flow(persist_result=True)
async def double(x: int) -> int:
    return 2 * x


@flow(on_cancellation=[lambda f, r, s: print("on_cancellation ran", flush=True)])
async def waits_forever() -> None:
    await anyio.sleep_forever()


@flow
async def values(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i
