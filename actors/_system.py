"""The actor system: the task group every actor runs in, and their shared fate."""

from __future__ import annotations

import enum
import itertools
import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
from anyio.abc import TaskGroup

from ._actor import Actor
from ._cell import ActorCell
from ._dead_letter import DeadLetter
from ._errors import ActorFailed
from ._ref import ActorRef
from ._supervision import Supervision

__all__ = ["ActorSystem"]

logger = logging.getLogger("actors")

MsgT = TypeVar("MsgT")


def _not_restartable() -> Actor[Any]:
    raise RuntimeError("this actor was spawned as an instance: it cannot be restarted")


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    CLOSED = "closed"


class ActorSystem:
    """Owns every actor: their tasks (made when they have mail or work) run in its task group.

    Leaving ``async with`` normally stops every actor and waits for them; leaving it with an
    error or a cancellation cancels them (their ``on_stop`` still runs). An escalated failure
    cancels everything and is raised as ``ActorFailed``.
    """

    def __init__(
        self,
        name: str = "actors",
        *,
        stop_timeout: float = 5.0,
        on_dead_letter: Callable[[DeadLetter], object] | None = None,
    ) -> None:
        self.name = name
        self.stop_timeout = stop_timeout
        self.on_dead_letter = on_dead_letter
        self._state = _State.NEW
        self._task_group: TaskGroup | None = None
        self._cells: dict[ActorCell, None] = {}  # live actors, in spawn order
        self._ids = itertools.count(1)
        self._dead_letters = 0
        self._failure: BaseException | None = None  # raised when the block is left
        self._cancelled_exc: type[BaseException] = BaseException  # set by __aenter__

    @property
    def dead_letter_count(self) -> int:
        """How many messages were never handled."""
        return self._dead_letters

    @property
    def actors(self) -> tuple[ActorRef[Any], ...]:
        """References to the live actors."""
        return tuple(cell.ref for cell in self._cells)

    def __len__(self) -> int:
        return len(self._cells)

    def __repr__(self) -> str:
        return f"<ActorSystem {self.name!r} {self._state.value}, {len(self)} actors>"

    async def __aenter__(self) -> Self:
        if self._state is not _State.NEW:
            raise RuntimeError(f"actor system {self.name!r} cannot be entered twice")
        self._cancelled_exc = anyio.get_cancelled_exc_class()
        # The root task group: one task per actor. Its cancel scope also covers the body of
        # the `async with` block, so an escalation cancels that too.
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._state = _State.RUNNING
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        task_group = self._task_group
        assert task_group is not None
        self._state = _State.STOPPING
        passed: BaseException | None = None
        if exc is None:
            for cell in list(self._cells):
                cell.request_stop()
        else:
            # Leaving on an error or a cancellation: cancel the actors (on_stop still runs).
            self._cancel_all()
            # A cancellation goes to the group, which absorbs the one it caused; any other
            # error is kept out of it so that it propagates as is, not in an ExceptionGroup.
            if isinstance(exc, self._cancelled_exc):
                passed = exc
        try:
            if passed is None:
                suppressed = await task_group.__aexit__(None, None, None)
            else:
                suppressed = await task_group.__aexit__(type(passed), passed, tb)
        except BaseException:
            self._close()
            if self._failure is not None:
                raise self._failure  # noqa: B904 - the actor's failure matters more
            raise
        self._close()
        if self._failure is not None:
            raise self._failure
        return passed is not None and bool(suppressed)

    def _cancel_all(self) -> None:
        """Cancel every task of the system; actors no task serves are stopped by a new one.

        An idle actor holds no task, so nothing would run its on_stop otherwise. Tasks started
        in the cancelled group run until their first unshielded checkpoint: the stop sequence
        is shielded (and bounded).
        """
        task_group = self._task_group
        assert task_group is not None
        task_group.cancel_scope.cancel()
        for cell in list(self._cells):
            if cell.claim_finishing():
                task_group.start_soon(cell.finish_on_cancel, name=f"actor {cell.name} (stop)")

    def _close(self) -> None:
        self._state = _State.CLOSED
        self._task_group = None

    def spawn(
        self,
        factory: Callable[[], Actor[MsgT]] | Actor[MsgT],
        *,
        name: str | None = None,
        mailbox_size: int = 1000,
        supervision: Supervision | None = None,
    ) -> ActorRef[MsgT]:
        """Start an actor made by ``factory`` (called again on each restart), or the instance
        given (an actor that is not restarted: a restart directive then stops it).

        Synchronous: the mailbox exists on return, so the actor can be told at once. No task
        is made until the actor has mail (or an ``on_start`` to run).
        """
        task_group = self._task_group
        if self._state is not _State.RUNNING or task_group is None:
            raise RuntimeError(
                f"cannot spawn on actor system {self.name!r}: it is {self._state.value}"
            )
        if isinstance(factory, Actor):
            actor, factory = factory, _not_restartable
        else:
            actor = factory()
        if name is None:
            name = f"{type(actor).__name__}-{next(self._ids)}"
        cell = ActorCell(
            self,
            factory,
            actor,
            name=name,
            mailbox_size=mailbox_size,
            supervision=actor.supervision if supervision is None else supervision,
        )
        self._cells[cell] = None
        if type(actor).on_start is not Actor.on_start:
            cell.start()  # on_start runs now, not at the first message
        return cell.ref

    # -- internal, called by ActorCell ----------------------------------------------------
    def _spawn(self, func: Callable[..., Coroutine[Any, Any, Any]], name: str, *args: Any) -> None:
        """Start a task of an actor in the system's task group."""
        task_group = self._task_group
        if task_group is None:
            raise RuntimeError(f"actor system {self.name!r} is closed")
        task_group.start_soon(func, *args, name=f"actor {name}")

    def _unregister(self, cell: ActorCell) -> None:
        self._cells.pop(cell, None)

    def _dead_letter(self, letter: DeadLetter) -> None:
        self._dead_letters += 1
        logger.debug("dead letter: %r", letter)
        if self.on_dead_letter is not None:
            try:
                self.on_dead_letter(letter)
            except Exception:
                logger.exception("the dead letter callback of %r failed", self.name)

    def _escalate(self, actor_name: str, error: Exception) -> None:
        """An actor's failure takes the whole system down."""
        failed = ActorFailed(f"actor {actor_name!r} failed: {error!r}", actor_name=actor_name)
        failed.__cause__ = error
        self._shut_down(failed)

    def _crash(self, error: BaseException) -> None:
        """A non-cancellation BaseException (e.g. KeyboardInterrupt) leaves an actor."""
        self._shut_down(error)

    def _shut_down(self, error: BaseException) -> None:
        # The first failure wins, except that a KeyboardInterrupt-like one beats an ActorFailed.
        current = self._failure
        if current is None or (isinstance(current, Exception) and not isinstance(error, Exception)):
            self._failure = error
        self._state = _State.STOPPING
        if self._task_group is not None:
            # Cancels every actor and the body of the `async with` block.
            self._cancel_all()
