"""The SQLite writer's wake-ups: answering callers on their event loops without waiting for them.

After each batch the writer queues one wake-up per event loop that has callers in it (`deliver`)
and goes on at once: a loop that is blocked (a thread stuck in a sync call, say) delays only its
own callers, never the writer, and so never the other loops sharing the store.

The writer still waits for a busy loop where that is worth it: it starts its next batch only
once some loop with writes queued has run its last wake-up (`ready`). With one busy loop that is
exactly "wait until the loop has woken its callers", so that what the loop queues meanwhile goes
into the next batch, which grows with the load (group commit); with several loops, a loop that
has not answered yet holds back nothing that another loop queued.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Protocol

from ._wakeup import LoopWaker

__all__ = ["Wakeups"]


class _Waiting(Protocol):
    """A caller waiting for its answer: its event, set on its event loop (`token`)."""

    @property
    def event(self) -> Any: ...
    @property
    def token(self) -> LoopWaker: ...


class Wakeups:
    """Which loops have writes queued, and which have not yet run their last wake-up.

    Everything here is guarded by the writer's condition (`cond`): `queued`, `taken` and
    `ready` are called with it held; `deliver` takes it itself.
    """

    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond
        self._queued: set[LoopWaker] = set()  # loops with writes in the writer's queue
        self._behind: dict[LoopWaker, int] = {}  # loop -> its wake-ups not run yet

    def queued(self, loop: LoopWaker) -> None:
        """A write from `loop` was queued."""
        self._queued.add(loop)

    def taken(self, left: Iterable[_Waiting] = ()) -> None:
        """The writer took a batch from the queue; `left` is what stays queued."""
        self._queued = {op.token for op in left}

    def ready(self) -> bool:
        """Whether the writer should take its next batch: a loop with writes queued has run its
        last wake-up (its callers were woken, and what it queued since is all there)."""
        behind = self._behind
        if not behind:
            return bool(self._queued)
        return any(loop not in behind for loop in self._queued)

    def deliver(self, ops: Iterable[_Waiting]) -> None:
        """Queue one wake-up per event loop for the callers of `ops`; never waits for a loop."""
        groups: dict[LoopWaker, list[_Waiting]] = {}
        for op in ops:
            group = groups.get(op.token)
            if group is None:
                groups[op.token] = [op]
            else:
                group.append(op)
        for loop, group in groups.items():
            with self._cond:  # before it is queued: the loop may run it at once
                self._behind[loop] = self._behind.get(loop, 0) + 1
            if not loop.call_soon(self._wake, loop, group):
                self._woken(loop)  # the loop has ended: nobody is waiting there any more

    def _wake(self, loop: LoopWaker, ops: list[_Waiting]) -> None:
        """On the callers' loop: wake them, then let the writer know this loop is answered."""
        for op in ops:
            op.event.set()
        self._woken(loop)

    def _woken(self, loop: LoopWaker) -> None:
        with self._cond:
            left = self._behind.get(loop, 0) - 1
            if left > 0:
                self._behind[loop] = left
            else:
                self._behind.pop(loop, None)
                self._cond.notify()  # the writer may be waiting for this loop's answer
