"""Calling into an event loop from another thread without waiting for it: "call soon".

The one backend-specific piece of the stores: asyncio's `loop.call_soon_threadsafe` and trio's
`TrioToken.run_sync_soon` both queue a function for the loop to run and return at once. (anyio's
`from_thread.run_sync` waits until the loop has run it: a thread using it is stuck for as long
as that loop is, whatever else it has to do.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import sniffio

__all__ = ["LoopWaker", "current_waker"]

logger = logging.getLogger("flowactor.store")


class LoopWaker:
    """One event loop as other threads see it: `call_soon` queues a function for it to run.

    Made by `current_waker()` on the loop. Hashable by identity: one waker per loop and user.
    """

    __slots__ = ("_closed", "_current", "_schedule")

    def __init__(
        self,
        schedule: Callable[..., Any],
        current: Callable[[], bool],
        closed: tuple[type[BaseException], ...],
    ) -> None:
        self._schedule = schedule
        self._current = current
        self._closed = closed  # what `schedule` raises once the loop has ended

    def call_soon(self, fn: Callable[..., None], *args: Any) -> bool:
        """Queue `fn(*args)` to run on the loop, from any thread, without waiting for it.

        False if the loop has ended (whoever waited there is gone). `fn` must not raise (trio
        would crash the whole run): it is wrapped so that an error is only logged.
        """
        try:
            self._schedule(_logged, fn, *args)
        except self._closed:
            return False
        return True

    def is_current(self) -> bool:
        """Whether the calling thread is running this loop now."""
        return self._current()


def _logged(fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("a call from another thread failed on the event loop")


def current_waker() -> LoopWaker:
    """The waker of the event loop running in this thread (asyncio or trio)."""
    if sniffio.current_async_library() == "trio":
        # Already imported wherever trio runs; not at the top, so that asyncio programs do
        # not pay for importing it.
        import trio

        token = trio.lowlevel.current_trio_token()

        def on_trio() -> bool:
            try:
                return trio.lowlevel.current_trio_token() is token
            except RuntimeError:  # not in a trio run
                return False

        return LoopWaker(token.run_sync_soon, on_trio, (trio.RunFinishedError,))
    loop = asyncio.get_running_loop()

    def on_asyncio() -> bool:
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:  # no asyncio loop here
            return False

    # A closed loop refuses with RuntimeError; one stopped but not closed never runs it.
    return LoopWaker(loop.call_soon_threadsafe, on_asyncio, (RuntimeError,))
