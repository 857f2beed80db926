"""Generator flows: handing yielded values to the consumer as they come.

The generator runs in the run's own task (async) or worker thread (sync) and passes each
value through a zero-buffer memory stream, so it advances only as the consumer takes values.
The attempt's deadline is paused while a value waits for the consumer: a run's timeout
counts the generator's time, never the consumer's.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncGenerator, Generator, Iterator
from typing import Any

import anyio
import anyio.from_thread
from anyio.lowlevel import EventLoopToken
from anyio.streams.memory import MemoryObjectSendStream

from .context import current_run_context

__all__ = ["iterate_async", "iterate_sync", "paused_deadline"]


def interrupted() -> bool:
    """Whether the current run's attempt has been timed out or cancelled."""
    ctx = current_run_context()
    return ctx is not None and ctx.interrupt.is_set()


_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError)


@contextlib.contextmanager
def paused_deadline(scope: anyio.CancelScope) -> Iterator[None]:
    """Stop `scope`'s clock inside the block; it resumes with the time that was left."""
    remaining = scope.deadline - anyio.current_time()
    scope.deadline = math.inf
    try:
        yield
    finally:
        if remaining != math.inf:
            scope.deadline = anyio.current_time() + remaining


async def hand_over(
    send: MemoryObjectSendStream[Any], item: Any, deadline: anyio.CancelScope
) -> bool:
    """Give `item` to the consumer; False if the consumer is gone (stopped iterating)."""
    with paused_deadline(deadline):
        try:
            await send.send(item)
        except _GONE:
            return False
    return True


async def iterate_async(
    gen: AsyncGenerator[Any, None],
    send: MemoryObjectSendStream[Any],
    deadline: anyio.CancelScope,
) -> None:
    """Drive an async generator in this task, closing it here (never from the GC elsewhere)."""
    async with contextlib.aclosing(gen):
        async for item in gen:
            if not await hand_over(send, item, deadline):
                return  # the consumer stopped early; it has asked for the run to be cancelled


def iterate_sync(
    gen: Generator[Any, None, Any],
    send: MemoryObjectSendStream[Any],
    deadline: anyio.CancelScope,
    token: EventLoopToken,
) -> Any:
    """Drive a sync generator in a worker thread; returns the generator's return value."""
    with contextlib.closing(gen):
        while True:
            try:
                item = next(gen)
            except StopIteration as stop:
                return stop.value
            if interrupted():
                return None  # the attempt is over (cancelled, timed out): stop here
            # Blocks this thread until the consumer takes the value (or the run ends).
            taken = anyio.from_thread.run(hand_over, send, item, deadline, token=token)
            if not taken:
                return None
