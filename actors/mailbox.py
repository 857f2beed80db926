"""An actor's mailbox: a bounded user lane plus an unbounded system lane served first."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final, Generic, TypeVar

import anyio
import attrs
from anyio.lowlevel import checkpoint, checkpoint_if_cancelled

from ._errors import ActorStopped, MailboxFull
from ._event import Event, new_event

__all__ = ["Mailbox", "MailboxStatistics"]

T = TypeVar("T")
D = TypeVar("D")


class _Nothing:
    """What poll() returns here when both lanes are empty."""


_NOTHING: Final = _Nothing()


class _Sender(Generic[T]):
    """A sender waiting for room, with its item; woken once the item is taken or refused."""

    __slots__ = ("done", "item", "refused")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = new_event()
        self.refused = False


@attrs.frozen
class MailboxStatistics:
    """A snapshot of a mailbox's load."""

    queued: int
    queued_system: int
    waiting_senders: int


class Mailbox(Generic[T]):
    """Two lanes of items for one consumer.

    The user lane holds at most `capacity` items; further senders wait for room, and their
    items follow in order. The system lane is never full, and its items come before any user
    item. Plain lists and deques, not streams: an idle mailbox is a few small objects, and the
    events a waiting consumer or sender needs are made only when one waits. `notify`, if given,
    is called each time an item arrives (an actor uses it to schedule itself).
    """

    __slots__ = (
        "_capacity",
        "_closed",
        "_consumer",
        "_notify",
        "_owner",
        "_senders",
        "_system",
        "_user",
    )

    def __init__(
        self, capacity: int, *, owner: str = "consumer", notify: Callable[[], None] | None = None
    ) -> None:
        if capacity < 0:
            raise ValueError(f"mailbox capacity must be >= 0, not {capacity}")
        self._capacity = capacity
        self._user: deque[T] | None = None  # made with the first user item
        self._system: list[T] | None = None  # made with the first system item
        self._senders: deque[_Sender[T]] | None = None  # senders waiting for room, in order
        self._consumer: Event | None = None  # set when an item arrives for a sleeper
        self._notify = notify
        self._owner = owner
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def _stopped(self) -> ActorStopped:
        return ActorStopped(f"the mailbox of {self._owner} is closed")

    def _arrived(self) -> None:
        if self._consumer is not None:
            self._consumer.set()
        if self._notify is not None:
            self._notify()

    # -- senders ---------------------------------------------------------------------------------
    def _has_room(self) -> bool:
        user = self._user
        return not self._senders and (0 if user is None else len(user)) < self._capacity

    def _append(self, item: T) -> None:
        user = self._user
        if user is None:
            user = self._user = deque()
        user.append(item)

    async def put(self, item: T) -> None:
        """Queue a user item, waiting for room; ``ActorStopped`` if closed (also while waiting).

        A checkpoint. Cancelled while waiting for room, the item is not sent.
        """
        await checkpoint_if_cancelled()
        if self._closed:
            raise self._stopped()
        if self._has_room():
            self._append(item)
            self._arrived()
            return
        sender = _Sender(item)
        if self._senders is None:
            self._senders = deque()
        self._senders.append(sender)
        self._arrived()  # a waiting sender's item can be taken at once (capacity 0)
        try:
            await sender.done.wait()
        except BaseException:
            if not sender.done.is_set():
                self._senders.remove(sender)  # cancelled while waiting: the item is not sent
            raise
        if sender.refused:
            raise self._stopped()

    def put_nowait(self, item: T) -> None:
        """Queue a user item now; ``MailboxFull`` if there is no room."""
        if self._closed:
            raise self._stopped()
        if not self._has_room():
            raise MailboxFull(f"the mailbox of {self._owner} is full")
        self._append(item)
        self._arrived()

    def put_own(self, item: T) -> None:
        """Queue a user item whatever the room, and notify nobody: the consumer's own note.

        The bound is backpressure on other senders; a consumer never waits on itself, and it
        looks at its mailbox again before it sleeps.
        """
        if self._closed:
            raise self._stopped()
        self._append(item)

    def put_system(self, item: T, *, notify: bool = True) -> None:
        """Queue an item on the system lane; it never blocks. `notify=False`: the caller
        takes care of the consumer itself (a sleeping consumer is still woken)."""
        if self._closed:
            raise self._stopped()
        if self._system is None:
            self._system = [item]
        else:
            self._system.append(item)
        if notify:
            self._arrived()
        elif self._consumer is not None:
            self._consumer.set()

    # -- the consumer ----------------------------------------------------------------------------
    def poll(self, default: D) -> T | D:
        """Take the next item without waiting, or return `default` if both lanes are empty."""
        if self._system:
            return self._system.pop(0)
        user = self._user
        if user:
            item = user.popleft()
            if self._senders:
                self._admit()
            elif not user:
                # Emptied: let the deque go. Most actors see a message or two in their life,
                # and a kept empty deque costs 600 bytes per idle actor.
                self._user = None
            return item
        if self._senders:  # no room at all (capacity 0): take straight from the first sender
            sender = self._senders.popleft()
            sender.done.set()
            return sender.item
        return default

    def _admit(self) -> None:
        """Move items of waiting senders into the freed room, waking those senders."""
        senders = self._senders
        user = self._user
        assert senders is not None and user is not None
        while senders and len(user) < self._capacity:
            sender = senders.popleft()
            user.append(sender.item)
            sender.done.set()

    def has_items(self) -> bool:
        """Whether an item is waiting in either lane."""
        return bool(self._system or self._user or self._senders)

    async def get(self) -> T:
        """Take the next item: system items first, then user items in order (a checkpoint)."""
        await checkpoint()  # one scheduling point per item, so a busy consumer stays fair
        return await self.next()

    def get_nowait(self) -> T:
        """Take the next item without waiting; ``anyio.WouldBlock`` if both lanes are empty."""
        item = self.poll(_NOTHING)
        if isinstance(item, _Nothing):
            raise anyio.WouldBlock
        return item

    async def next(self) -> T:
        """Like ``get`` but without the scheduling point when an item is ready."""
        while True:
            item = self.poll(_NOTHING)
            if not isinstance(item, _Nothing):
                return item
            if self._closed:
                raise self._stopped()
            arrived = self._consumer = new_event()
            try:
                await arrived.wait()
            finally:
                self._consumer = None

    def unget(self, item: T) -> None:
        """Put back an item just taken, to be served next (its consumer was interrupted)."""
        if self._user is None:
            self._user = deque()
        self._user.appendleft(item)

    def close(self) -> list[T]:
        """Close both lanes and return every item still queued, for the caller to dispose of.

        Senders still waiting for room get ``ActorStopped``; their items are not returned.
        """
        if self._closed:
            return []
        self._closed = True
        self._notify = None  # the consumer may hold this mailbox: no cycle through a callback
        left: list[T] = list(self._user or ())
        left.extend(self._system or ())
        self._user = None
        self._system = None
        for sender in self._senders or ():
            sender.refused = True
            sender.done.set()
        self._senders = None
        if self._consumer is not None:
            self._consumer.set()  # a sleeping consumer sees the mailbox closed
        return left

    def statistics(self) -> MailboxStatistics:
        """Counts of queued user items, queued system items and senders waiting for room."""
        return MailboxStatistics(
            queued=len(self._user or ()),
            queued_system=len(self._system or ()),
            waiting_senders=len(self._senders or ()),
        )

    def __len__(self) -> int:
        """The number of queued items, both lanes."""
        return len(self._user or ()) + len(self._system or ())
