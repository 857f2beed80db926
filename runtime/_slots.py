"""Places under a limit, lent down a tree of subflows so that no run starves its own children.

A run that waits for a subflow must not hold the place that subflow needs: with
`concurrency_limit=5` and ten parents each calling a subflow, five parents would hold every
slot while their children wait for one, for ever. So a place is not owned by one run but by a
tree: a `Slot` taken from a `Limit` is shared (`share`) with the subflows of the run holding
it, and goes back to the limit when its last holder lets go (`release`).

The runtime uses two limits this way: `concurrency_limit` (a subflow runs under its parent's
run slot and takes none of its own) and `thread_limit` (a sync subflow called from a blocked
sync ancestor's thread runs its own thread under that thread's slot).
"""

from __future__ import annotations

import anyio

__all__ = ["Limit", "Places", "Slot"]


class Limit:
    """At most `size` slots held at once; `acquire` waits for one (FIFO)."""

    __slots__ = ("_semaphore", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._semaphore = anyio.Semaphore(size)

    async def acquire(self) -> Slot:
        """Wait for a free place; the caller owns the returned slot (one `release` due)."""
        await self._semaphore.acquire()
        return Slot(self._semaphore)

    def try_acquire(self) -> Slot | None:
        """A free place now, or None (never waits)."""
        try:
            self._semaphore.acquire_nowait()
        except anyio.WouldBlock:
            return None
        return Slot(self._semaphore)

    @property
    def free(self) -> int:
        """Places nobody holds now."""
        return self._semaphore.value


class Slot:
    """One place under a `Limit`, held by a run or a thread and shared with its subflows.

    Every `share()` is matched by one `release()`, as is the acquisition that made the slot;
    the place goes back to its limit at the last one. Used on the event loop's thread only.
    """

    __slots__ = ("_holders", "_semaphore")

    def __init__(self, semaphore: anyio.Semaphore) -> None:
        self._semaphore = semaphore
        self._holders = 1

    @property
    def held(self) -> bool:
        """Whether someone still holds this place (a released slot can no longer be shared)."""
        return self._holders > 0

    def share(self) -> Slot:
        """One more holder of this place (it stays taken until that holder releases it too)."""
        if self._holders <= 0:
            raise RuntimeError("a released slot cannot be shared")
        self._holders += 1
        return self

    def release(self) -> None:
        """One holder lets go; the place goes back to the limit when nobody holds it."""
        self._holders -= 1
        if self._holders == 0:
            self._semaphore.release()


class Places:
    """The places a run holds under the runtime's limits, and those it lends its subflows.

    `run`: its place under `concurrency_limit` (a subflow shares its parent's); `lent_thread`:
    the place of a blocked sync ancestor's thread, under which its own sync attempts run.
    """

    __slots__ = ("lent_thread", "run")

    def __init__(self, run: Slot | None = None, lent_thread: Slot | None = None) -> None:
        self.run = run
        self.lent_thread = lent_thread

    def for_subflow(self, thread: Slot | None) -> Places:
        """Shares of these places for a subflow: the run slot, and `thread` (the slot of the
        run's blocked thread, if it has one) or the one lent to it. The subflow releases them."""
        run = self.run
        thread = thread or self.lent_thread
        return Places(
            run.share() if run is not None else None,
            thread.share() if thread is not None and thread.held else None,
        )

    def release(self) -> None:
        """Give every place back (once)."""
        run, lent, self.run, self.lent_thread = self.run, self.lent_thread, None, None
        if run is not None:
            run.release()
        if lent is not None:
            lent.release()
