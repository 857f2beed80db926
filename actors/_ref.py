"""The handle through which everything talks to an actor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from ._envelope import Ask, Reply
from ._errors import AskTimeout, MailboxFull

if TYPE_CHECKING:
    from ._cell import ActorCell

__all__ = ["ActorRef"]

MsgT = TypeVar("MsgT")


class ActorRef(Generic[MsgT]):
    """Sends messages to one actor; cheap to copy around, safe to keep after it stops."""

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell

    def __eq__(self, other: object) -> bool:
        # Refs are made on demand, so two refs to one actor are equal rather than identical.
        if isinstance(other, ActorRef):
            return self._cell is other._cell
        return NotImplemented

    def __hash__(self) -> int:
        return id(self._cell)

    @property
    def name(self) -> str:
        """The actor's name."""
        return self._cell.name

    @property
    def is_alive(self) -> bool:
        """False once the actor has fully stopped."""
        return not self._cell.terminated

    # The API takes timeouts (as a convenience that maps to MailboxFull / AskTimeout).
    async def tell(self, message: MsgT, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Queue ``message``, waiting for room (``MailboxFull`` after ``timeout`` seconds)."""
        cell = self._cell
        if cell.stopping:
            raise cell.stopped_error()
        if timeout is None:
            await cell.mailbox.put(message)
            return
        # Bounds only the wait for room; the timeout is turned into MailboxFull below.
        with anyio.move_on_after(timeout) as scope:
            await cell.mailbox.put(message)
        if scope.cancelled_caught:
            raise MailboxFull(f"no room in the mailbox of {self.name!r} within {timeout} s")

    def tell_nowait(self, message: MsgT) -> None:
        """Queue ``message`` now; ``MailboxFull`` if there is no room."""
        cell = self._cell
        if cell.stopping:
            raise cell.stopped_error()
        cell.mailbox.put_nowait(message)

    def tell_system(self, message: MsgT) -> None:
        """Queue ``message`` on the system lane: never blocks, handled before user messages."""
        self._cell.tell_system(message)

    async def ask(self, message: MsgT, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Send ``message`` and return what the handler returns (or raise what it raises)."""
        cell = self._cell
        if cell.stopping:
            raise cell.stopped_error()
        reply = Reply()
        # Bounds both the wait for room and the wait for the answer.
        with anyio.move_on_after(timeout):
            await cell.mailbox.put(Ask(message, reply))
            return await reply.wait()
        raise AskTimeout(f"{self.name!r} did not answer within {timeout} s")

    async def serve_here(self, message: MsgT) -> None:
        """Tell ``message`` and run the actor in this task until it is idle (no task is made).

        For a caller that would otherwise wait for the actor's work anyway. Cancelling the
        caller stops the actor (its ``on_stop`` runs) when it is cancelled while handling a
        message; while it is running the actor's work, it cancels that work.
        """
        await self._cell.serve_here(message)

    def stop(self) -> None:
        """Ask the actor to stop after its current message; idempotent, never blocks."""
        self._cell.request_stop()

    async def join(self) -> None:
        """Wait until the actor has fully stopped (``on_stop`` and child tasks done)."""
        await self._cell.wait_stopped()

    def __repr__(self) -> str:
        state = "alive" if self.is_alive else "stopped"
        return f"<ActorRef {self.name!r} {state}>"
