"""Worker threads for sync flows: daemon threads under a limit that counts live threads.

Why not `anyio.to_thread.run_sync`: it cannot stop waiting at a deadline without abandoning
the thread, and an abandoned thread then stops counting against its limiter on asyncio (but
not on trio), and is non-daemon, so a hung flow would hang interpreter exit. Here a slot is
held until the thread really returns, whatever the waiting side did, and threads are daemons.

A call may run under a slot it was lent (`slot=`, see `_slots`) instead of taking one: a sync
subflow called from a sync flow's blocked thread does, so a tree of nested sync calls never
waits for a place its own ancestors hold.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import attrs

from actors import Event, new_event

from ._slots import Limit, Slot

__all__ = ["ThreadRunner"]


@attrs.define(eq=False)
class _Call:
    """One call running in a thread, and how it ended."""

    done: Event = attrs.field(factory=new_event)
    value: Any = None
    error: BaseException | None = None


@attrs.define(eq=False)
class ThreadRunner:
    """Runs sync callables in daemon threads, at most `limit` slots held (abandoned ones included).

    Each thread holds a slot until it returns; threads lent a slot share it (see `run`).
    """

    limit: int
    _slots: Limit = attrs.field(init=False)
    _live: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"thread_limit must be at least 1, got {self.limit}")
        self._slots = Limit(self.limit)

    @property
    def live_threads(self) -> int:
        """Threads started here that have not returned yet (abandoned ones included)."""
        return self._live

    async def acquire(self) -> Slot:
        """A slot of this runner's limit, for `run(..., slot=)` (waits for one to be free)."""
        return await self._slots.acquire()

    async def run(
        self, fn: Callable[[], Any], *, name: str, grace: float = 0.0, slot: Slot | None = None
    ) -> Any:
        """Run `fn()` in a new thread and return its result (or raise its exception).

        The thread runs under `slot` (which this call then owns, and releases when the thread
        returns), or under a slot of its own taken from the limit.

        If the waiting task is cancelled, the thread gets `grace` seconds to return, then it
        is abandoned: it runs on, its slot is released only when it returns, and its outcome
        is dropped.
        """
        if slot is None:
            slot = await self._slots.acquire()
        call = _Call()
        token = anyio.lowlevel.current_token()
        ctx = contextvars.copy_context()  # the thread sees the run's context variables

        def finished() -> None:  # runs on the event loop thread
            self._live -= 1
            slot.release()
            call.done.set()

        def target() -> None:
            try:
                call.value = ctx.run(fn)
            except BaseException as exc:  # reported to the waiting task, never lost in the thread
                call.error = exc
            # If the event loop is gone, nobody is waiting any more: nothing to report.
            with contextlib.suppress(Exception):
                anyio.from_thread.run_sync(finished, token=token)

        thread = threading.Thread(target=target, name=name, daemon=True)
        self._live += 1
        try:
            thread.start()
        except BaseException:
            self._live -= 1
            slot.release()
            raise
        try:
            await call.done.wait()
        except BaseException:
            if grace > 0:
                # Shielded (we are being cancelled) and bounded by `grace`: a thread that is
                # about to return is waited for, one that is stuck is abandoned.
                with anyio.move_on_after(grace, shield=True):
                    await call.done.wait()
            raise
        if call.error is not None:
            raise call.error
        return call.value
