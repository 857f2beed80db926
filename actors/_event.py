"""A one-shot event, lighter than `anyio.Event`: the one backend-specific piece of the actors.

Every run waits on a few of these (its end, its attempt's end, a write's answer). On asyncio an
`anyio.Event` is an asyncio Event made twice over, each with a deque (about 1.5 KiB and a dozen
allocations, most of them never used); here a waiting task costs one future, and an event no
one waits on costs two attributes. On trio, `trio.Event` is already that light: it is used as
it is. Same semantics as `anyio.Event`: `set()` from the event loop's thread, `wait()` is a
checkpoint even when the event is already set, and cancelling a waiter leaves the event alone.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import sniffio
from anyio.lowlevel import checkpoint

__all__ = ["Event", "new_event"]


class Event(Protocol):
    """What `new_event()` gives: set once, waited for by any number of tasks."""

    def set(self) -> None: ...
    def is_set(self) -> bool: ...
    async def wait(self) -> None: ...


class _AsyncioEvent:
    """An event for asyncio (and uvloop): one future per waiting task, made when it waits."""

    __slots__ = ("_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        if self._flag:
            return
        self._flag = True
        waiters, self._waiters = self._waiters, None
        for future in waiters or ():
            if not future.done():
                future.set_result(None)

    async def wait(self) -> None:
        if self._flag:
            await checkpoint()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters
        if waiters is None:
            self._waiters = [future]
        else:
            waiters.append(future)
        try:
            await future
        finally:
            waiters = self._waiters
            if waiters is not None and future in waiters:
                waiters.remove(future)  # cancelled before the event was set


def new_event() -> Event:
    """A new event for the event loop running in this thread (asyncio or trio)."""
    if sniffio.current_async_library() == "trio":
        # Imported only where trio runs, so that asyncio programs do not pay for it.
        import trio

        event: Any = trio.Event()
        return event  # type: ignore[no-any-return]
    return _AsyncioEvent()
