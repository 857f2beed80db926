"""An actor's mailbox: a bounded user lane plus an unbounded system lane served first."""

from __future__ import annotations

import contextlib
from typing import Final, Generic, TypeVar

import anyio
import attrs
from anyio.lowlevel import checkpoint, checkpoint_if_cancelled
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._errors import ActorStopped, MailboxFull

__all__ = ["Mailbox", "MailboxStatistics"]

T = TypeVar("T")
D = TypeVar("D")


class _Wake:
    """Posted to a receiver blocked on the empty user lane when a system item arrives."""


_WAKE: Final = _Wake()


class _Nothing:
    """What poll() returns here when both lanes are empty."""


_NOTHING: Final = _Nothing()


@attrs.define(eq=False)
class _Parked(Generic[T]):
    """A user item whose sender had to wait for room.

    When the mailbox closes, the drain may pull the item out of a sender that is still
    waiting: that sender is then told (``ActorStopped``) instead of the item becoming a dead
    letter; an item whose sender already returned is a dead letter like any other.
    """

    item: T
    sender_gone: bool = False
    rejected: bool = False


@attrs.frozen
class MailboxStatistics:
    """A snapshot of a mailbox's load."""

    queued: int
    queued_system: int
    waiting_senders: int


class Mailbox(Generic[T]):
    """Two lanes of items for one consumer.

    The user lane is a bounded anyio memory object stream (senders wait for room). The system
    lane is a list, never full, whose items are delivered before any queued user item.
    """

    __slots__ = ("_closed", "_held", "_owner", "_receive", "_send", "_sleeping", "_system")

    def __init__(self, capacity: int, *, owner: str = "consumer") -> None:
        if capacity < 0:
            raise ValueError(f"mailbox capacity must be >= 0, not {capacity}")
        # Not subscripted with the item type: building that union on every call costs more
        # than the rest of the mailbox; the annotations below carry it instead.
        send: MemoryObjectSendStream[T | _Wake | _Parked[T]]
        receive: MemoryObjectReceiveStream[T | _Wake | _Parked[T]]
        send, receive = anyio.create_memory_object_stream(capacity)
        self._send = send
        self._receive = receive
        # A list, not a deque: it holds a stop or a cancel now and then, and an empty deque
        # costs ten times an empty list in every one of thousands of mailboxes.
        self._system: list[T] = []
        self._held: list[T] = []  # a user item taken while system items were pending
        self._owner = owner
        self._sleeping = False  # the consumer waits in get() for a user item
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def _stopped(self) -> ActorStopped:
        return ActorStopped(f"the mailbox of {self._owner} is closed")

    async def put(self, item: T) -> None:
        """Queue a user item, waiting for room; ``ActorStopped`` if closed (also while waiting)."""
        await checkpoint_if_cancelled()
        if self._closed:
            raise self._stopped()
        try:
            self._send.send_nowait(item)
            return
        except anyio.WouldBlock:
            pass
        parked = _Parked(item)
        try:
            await self._send.send(parked)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise self._stopped() from None
        finally:
            parked.sender_gone = True
        if parked.rejected:
            raise self._stopped()

    def put_nowait(self, item: T) -> None:
        """Queue a user item now; ``MailboxFull`` if there is no room."""
        if self._closed:
            raise self._stopped()
        try:
            self._send.send_nowait(item)
        except anyio.WouldBlock:
            raise MailboxFull(f"the mailbox of {self._owner} is full") from None

    def put_system(self, item: T) -> None:
        """Queue an item on the system lane; it never blocks."""
        if self._closed:
            raise self._stopped()
        self._system.append(item)
        if self._sleeping:
            # The consumer sleeps on the user lane: wake it (once) to look at the system lane.
            # It may not be registered as a receiver yet, so the sentinel can land in the
            # buffer, where get() skips it; WouldBlock means a user item is there to wake it.
            self._sleeping = False
            with contextlib.suppress(anyio.WouldBlock):
                self._send.send_nowait(_WAKE)

    async def get(self) -> T:
        """Take the next item: system items first, then user items in order."""
        await checkpoint()  # one scheduling point per item, so a busy consumer stays fair
        return await self.next()

    def get_nowait(self) -> T:
        """Take the next item without waiting; ``anyio.WouldBlock`` if both lanes are empty."""
        item = self.poll(_NOTHING)
        if isinstance(item, _Nothing):
            raise anyio.WouldBlock
        return item

    def poll(self, default: D) -> T | D:
        """Take the next item without waiting, or return `default` if both lanes are empty."""
        if self._system:
            return self._system.pop(0)
        if self._held:
            return self._held.pop()
        receive = self._receive
        while self._user_waiting():
            item = receive.receive_nowait()  # something is there: it cannot raise WouldBlock
            if isinstance(item, _Parked):
                return item.item
            if not isinstance(item, _Wake):
                return item
        return default

    def _user_waiting(self) -> bool:
        """Whether the user lane holds an item (in its buffer or with a waiting sender).

        Asked of the stream's statistics rather than learnt from a raised WouldBlock: an
        exception that passes through a coroutine gives it a frame object for as long as it
        lives, and every idle actor's loop would carry one.
        """
        stats = self._receive.statistics()
        return bool(stats.current_buffer_used or stats.tasks_waiting_send)

    async def next(self) -> T:
        """Like ``get`` but without the scheduling point when an item is ready.

        For a consumer that yields elsewhere (the actor loop checkpoints once per handled
        message unless it has just waited).
        """
        while True:
            ready = self.poll(_NOTHING)
            if not isinstance(ready, _Nothing):
                return ready
            if self._closed:
                raise self._stopped()
            # Sleep on the user lane; put_system wakes us while _sleeping is set.
            self._sleeping = True
            try:
                item = await self._receive.receive()
            finally:
                self._sleeping = False
            if isinstance(item, _Wake):
                continue
            if isinstance(item, _Parked):
                item = item.item
            if self._system:
                # A system item arrived while we waited: it goes first.
                self._held.append(item)
                continue
            return item

    def unget(self, item: T) -> None:
        """Put back an item just taken, to be served next (its consumer was interrupted)."""
        self._held.append(item)

    def close(self) -> list[T]:
        """Close both lanes and return every item still queued, for the caller to dispose of.

        The user lane is drained with ``receive_nowait`` before closing, because closing a
        memory object stream silently drops its buffer. Senders still waiting for room get
        ``ActorStopped``.
        """
        if self._closed:
            return []
        self._closed = True
        left = self._held
        self._held = []
        while self._user_waiting():
            item = self._receive.receive_nowait()
            if isinstance(item, _Parked):
                if item.sender_gone:
                    left.append(item.item)
                else:
                    item.rejected = True
            elif not isinstance(item, _Wake):
                left.append(item)
        left.extend(self._system)
        self._system.clear()
        self._send.close()
        self._receive.close()
        return left

    def statistics(self) -> MailboxStatistics:
        """Counts of queued user items, queued system items and senders waiting for room."""
        stats = self._receive.statistics()
        return MailboxStatistics(
            queued=stats.current_buffer_used + len(self._held),
            queued_system=len(self._system),
            waiting_senders=stats.tasks_waiting_send,
        )

    def __len__(self) -> int:
        """The number of queued items, both lanes."""
        stats = self.statistics()
        return stats.queued + stats.queued_system
