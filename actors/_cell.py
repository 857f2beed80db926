"""The machinery behind one actor: its task, incarnations, child tasks and supervision."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup
from anyio.lowlevel import checkpoint

from ._actor import Actor
from ._dead_letter import DeadLetter
from ._envelope import STOP, Ask
from ._errors import ActorStopped
from ._ref import ActorRef
from ._supervision import Directive, Supervision, Supervisor
from .mailbox import Mailbox

if TYPE_CHECKING:
    from ._system import ActorSystem

__all__ = ["ActorCell"]

logger = logging.getLogger("actors")

_NOTHING: Any = object()  # what Mailbox.poll returns here when both lanes are empty


def _no_factory() -> Actor[Any]:
    raise RuntimeError("a stopped actor is not restarted")


class ActorCell:
    """Runs one actor as one task of its system, restarting it as its supervision says.

    Each incarnation (instance) gets its own task group for child tasks. Failures are caught
    here and never reach a task group, so groups only ever see cancellations.
    """

    __slots__ = (
        "_children",
        "_done",
        "_factory",
        "_failure",
        "_live_children",
        "_next",
        "_supervision",
        "_supervisor",
        "mailbox",
        "name",
        "stopping",
        "system",
        "terminated",
    )

    def __init__(
        self,
        system: ActorSystem,
        factory: Callable[[], Actor[Any]],
        actor: Actor[Any],
        *,
        name: str,
        mailbox_size: int,
        supervision: Supervision,
    ) -> None:
        self.system = system
        self.name = name
        self.mailbox: Mailbox[object] = Mailbox(mailbox_size, owner=f"actor {name!r}")
        self.stopping = False  # no new messages accepted
        self.terminated = False  # fully stopped
        self._factory = factory
        self._next: Actor[Any] | None = actor  # the instance to run next, made by spawn
        self._supervision = supervision
        self._supervisor: Supervisor | None = None  # made at the first failure
        self._children: TaskGroup | None = None
        self._live_children = 0  # child tasks started and not yet returned (or never began)
        self._failure: BaseException | None = None
        self._done: anyio.Event | None = None  # made on demand: most actors are never joined
        actor._actor_cell = self

    @property
    def ref(self) -> ActorRef[Any]:
        """A reference to this actor.

        Made on demand rather than kept: a cell holding its own ref would be a reference cycle,
        leaving every finished actor to the cycle collector instead of freeing it at once.
        """
        return ActorRef(self)

    def stopped_error(self) -> ActorStopped:
        return ActorStopped(f"actor {self.name!r} is stopped")

    def request_stop(self) -> None:
        """Post a stop on the system lane (once)."""
        if not self.stopping:
            self.stopping = True
            self.mailbox.put_system(STOP)

    async def wait_stopped(self) -> None:
        if self.terminated:
            return
        if self._done is None:
            self._done = anyio.Event()
        await self._done.wait()

    def start_child(
        self, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...], name: object
    ) -> None:
        children = self._children
        if children is None:
            raise RuntimeError(f"actor {self.name!r} is not running: cannot start a child task")
        if name is None:
            name = f"{self.name}/{getattr(func, '__qualname__', func)}"
        children.start_soon(self._run_child, func, args, name=name)
        self._live_children += 1

    async def run(self) -> None:
        """The actor's task: incarnations until it stops, then dispose of leftover mail."""
        try:
            while True:
                failure = await self._incarnate()
                if failure is None or not self._restart_after(failure):
                    return
        except BaseException as exc:
            if isinstance(exc, self.system._cancelled_exc):
                raise
            # Not a supervised failure (e.g. KeyboardInterrupt): the system re-raises it.
            self.system._crash(exc)
        finally:
            self._terminate()

    def _restart_after(self, failure: BaseException) -> bool:
        """Apply the supervision strategy to a failed incarnation: True to run a new one."""
        if not isinstance(failure, Exception):
            raise failure
        if self._supervisor is None:
            self._supervisor = Supervisor(self._supervision)
        directive = self._supervisor.decide(anyio.current_time())
        if directive is Directive.RESTART and not self.stopping:
            logger.warning("actor %r failed; restarting it", self.name, exc_info=failure)
            return True
        if directive is Directive.ESCALATE:
            logger.error("actor %r failed; escalating", self.name, exc_info=failure)
            self.system._escalate(self.name, failure)
        else:
            logger.error("actor %r failed; stopping it", self.name, exc_info=failure)
        return False

    async def _incarnate(self) -> BaseException | None:
        """Run one instance from on_start to on_stop; return its failure, if any."""
        self._failure = None
        self._live_children = 0  # the previous incarnation's group has awaited all of its own
        actor, self._next = self._next, None
        if actor is None:
            try:
                actor = self._factory()
            except Exception as exc:
                return exc
            actor._actor_cell = self
        try:
            async with anyio.create_task_group() as children:
                self._children = children
                await self._serve(actor)
                if self._live_children:
                    # Stopping: cancel the child tasks still running; leaving the group awaits
                    # them. (Skipped when there are none: anyio's cancel() is not free.)
                    children.cancel_scope.cancel()
        finally:
            self._children = None
            if actor.needs_on_stop():
                await self._call_on_stop(actor)
        return self._failure

    async def _serve(self, actor: Actor[Any]) -> None:
        """on_start, then handle messages until a stop or a failure."""
        cancelled = self.system._cancelled_exc
        if type(actor).on_start is not Actor.on_start:
            try:
                await actor.on_start()
            except BaseException as exc:
                if isinstance(exc, cancelled):
                    raise
                self._fail(exc)
                return
        mailbox = self.mailbox
        receive = actor.receive
        waited = True  # the task has just been scheduled: no need to yield before the first item
        while True:
            item = mailbox.poll(_NOTHING)
            if item is _NOTHING:
                item = await mailbox.next()  # sleeps until an item comes
            elif not waited and item is not STOP:
                # One scheduling point between two messages, so that a busy actor stays fair
                # to the rest of the loop. Cancelled here, the item goes back first.
                try:
                    await checkpoint()
                except BaseException:
                    mailbox.unget(item)
                    raise
            waited = False
            if item is STOP:
                # Nothing more will be handled: refuse new mail now, not after on_stop.
                self._close_mailbox()
                return
            reply = None
            if isinstance(item, Ask):
                reply = item.reply
                item = item.message
            try:
                result = await receive(item)
            except BaseException as exc:
                if reply is not None:
                    reply.fail(exc if isinstance(exc, Exception) else self.stopped_error())
                if isinstance(exc, cancelled):
                    raise
                self._fail(exc)
                return
            if reply is not None:
                reply.succeed(result)

    async def _run_child(self, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            await func(*args)
        except BaseException as exc:
            if isinstance(exc, self.system._cancelled_exc):
                raise
            self._fail(exc)
        finally:
            self._live_children -= 1

    def _fail(self, exc: BaseException) -> None:
        """Record a failure of the current incarnation and end it."""
        failure = self._failure
        if failure is None or (isinstance(failure, Exception) and not isinstance(exc, Exception)):
            self._failure = exc
        if self._children is not None:
            # Ends the incarnation: cancels the message loop and every child task.
            self._children.cancel_scope.cancel()

    async def _call_on_stop(self, actor: Actor[Any]) -> None:
        # Shielded: on_stop must run even while the actor is being cancelled; bounded by
        # stop_timeout so that a stuck on_stop cannot hold up the system.
        with anyio.move_on_after(self.system.stop_timeout, shield=True) as scope:
            try:
                await actor.on_stop()
            except Exception:
                logger.exception("on_stop of actor %r failed", self.name)
        if scope.cancelled_caught:
            logger.warning(
                "on_stop of actor %r timed out after %s s", self.name, self.system.stop_timeout
            )

    def _close_mailbox(self) -> None:
        """Close the mailbox; what is left in it becomes dead letters, asks get ActorStopped."""
        self.stopping = True
        for item in self.mailbox.close():
            if item is STOP:
                continue
            message = item
            if isinstance(item, Ask):
                item.reply.fail(self.stopped_error())
                message = item.message
            self.system._dead_letter(DeadLetter(self.name, message, "actor stopped"))

    def _terminate(self) -> None:
        self._close_mailbox()
        self.terminated = True
        self.system._unregister(self)
        # A stopped actor is never built again. Dropping the factory (which usually holds the
        # instance, and the instance holds this cell) breaks a reference cycle, so the actor
        # is freed at once instead of waiting for a full garbage collection.
        self._factory = _no_factory
        self._next = None
        if self._done is not None:
            self._done.set()
