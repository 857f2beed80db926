"""The base class users subclass to write an actor."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, TypeVarTuple

from ._supervision import Stop, Supervision

if TYPE_CHECKING:
    from ._cell import ActorCell
    from ._ref import ActorRef
    from ._system import ActorSystem

__all__ = ["Actor"]

MsgT = TypeVar("MsgT")
PosArgsT = TypeVarTuple("PosArgsT")


class Actor(abc.ABC, Generic[MsgT]):
    """State plus a ``receive`` handler, run one message at a time by an ``ActorSystem``.

    ``ref``, ``system`` and ``start_soon`` are usable from ``on_start`` on (not in
    ``__init__``): the system binds the instance when it spawns or restarts it.
    """

    supervision: ClassVar[Supervision] = Stop()
    """What happens when this actor fails, unless ``spawn`` is given another strategy."""

    _actor_cell: ActorCell | None = None

    def _bound_cell(self) -> ActorCell:
        cell = self._actor_cell
        if cell is None:
            raise RuntimeError(f"{type(self).__name__} is not running in an ActorSystem yet")
        return cell

    @property
    def ref(self) -> ActorRef[MsgT]:
        """This actor's own reference."""
        return self._bound_cell().ref

    @property
    def system(self) -> ActorSystem:
        """The system running this actor."""
        return self._bound_cell().system

    def start_soon(
        self,
        func: Callable[[*PosArgsT], Awaitable[Any]],
        *args: *PosArgsT,
        name: object = None,
    ) -> None:
        """Run ``func(*args)`` as a child task, alongside message handling.

        An exception from it is a failure of this actor; it is cancelled when the actor stops.
        """
        self._bound_cell().start_child(func, args, name)

    def start_work(
        self,
        func: Callable[[*PosArgsT], Awaitable[Any]],
        *args: *PosArgsT,
        cancel: Callable[[], object] | None = None,
    ) -> None:
        """Run ``func(*args)`` beside message handling, starting once this message is handled.

        It runs in the actor's own task when that task is free (no task is made for it), and
        in a task of its own otherwise. What it returns, if not None, becomes this actor's next
        message. Like a child task, it is stopped when the actor stops (under a cancel scope of
        its own, or by calling ``cancel`` when the work manages its own scope), and an
        exception from it is a failure of this actor.
        """
        self._bound_cell().start_work(func, args, cancel)

    def interrupt(self, message: MsgT) -> bool:
        """Called at once when ``message`` arrives on the system lane while a task of this
        actor runs its work and none serves its mailbox.

        Return True when you have made that work end promptly (e.g. cancelled its scope): the
        message is then handled by that same task once the work is over, and no task is made
        for it. The default (False) has a task serve it now, beside the work.
        """
        return False

    async def on_start(self) -> None:
        """Called before the first message (and after each restart)."""

    @abc.abstractmethod
    async def receive(self, message: MsgT) -> object:
        """Handle one message; the return value answers an ``ask``."""

    async def on_stop(self) -> None:
        """Called once when this instance stops, whatever the reason; shielded and bounded."""

    def needs_on_stop(self) -> bool:
        """Whether ``on_stop`` has work to do now (skipping it saves a shielded scope per stop).

        By default: whenever a subclass defines ``on_stop``.
        """
        return type(self).on_stop is not Actor.on_stop
