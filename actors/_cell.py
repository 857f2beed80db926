"""The machinery behind one actor: who serves its mailbox, its work, supervision and stopping.

An actor holds no task while it has nothing to do. Mail schedules it: one dispatcher task at a
time handles its messages in order, and ends when the mailbox is empty. Work the actor starts
runs beside message handling: `start_soon` in a task of its own at once, `start_work` in the
dispatcher's own task once the mailbox is empty (messages arriving meanwhile get a new
dispatcher). A flow run whose attempt is work therefore costs one task, not three.

Failures are caught here and never reach the system's task group, which only ever sees
cancellations.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from anyio.lowlevel import checkpoint

from ._actor import Actor
from ._dead_letter import DeadLetter
from ._envelope import STOP, Ask
from ._errors import ActorStopped
from ._event import Event, new_event
from ._ref import ActorRef
from ._supervision import Directive, Supervision, Supervisor
from .mailbox import Mailbox

if TYPE_CHECKING:
    from ._system import ActorSystem

__all__ = ["ActorCell"]

logger = logging.getLogger("actors")

_NOTHING: Any = object()  # what Mailbox.poll returns here when both lanes are empty


class _Work:
    """A piece of an actor's work: what to call, and how to stop it."""

    __slots__ = ("args", "cancel", "deliver", "func", "scope")

    def __init__(
        self,
        func: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        deliver: bool,
        cancel: Callable[[], object] | None,
    ) -> None:
        self.func = func
        self.args = args
        self.deliver = deliver  # what it returns is a message to its actor
        self.cancel = cancel  # how it stops itself; None: it runs under a scope of ours
        # Made now, so that stopping the work before it starts cancels it at its first await.
        self.scope = anyio.CancelScope() if cancel is None else None

    def stop(self) -> None:
        """Cancel the work (before it starts, too)."""
        if self.cancel is not None:
            self.cancel()
        elif self.scope is not None:
            self.scope.cancel()


def _no_factory() -> Actor[Any]:
    raise RuntimeError("a stopped actor is not restarted")


class ActorCell:
    """Runs one actor for its system: schedules it on mail, applies supervision, stops it."""

    __slots__ = (
        "_actor",
        "_children",
        "_dispatching",
        "_done",
        "_factory",
        "_failure",
        "_finishing",
        "_idle",
        "_live",
        "_queued_work",
        "_started",
        "_supervision",
        "_supervisor",
        "_working",
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
        self.mailbox: Mailbox[object] = Mailbox(
            mailbox_size, owner=f"actor {name!r}", notify=self._schedule
        )
        self.stopping = False  # no new messages accepted
        self.terminated = False  # fully stopped
        self._factory = factory
        self._actor: Actor[Any] | None = actor  # the current instance
        self._started = False  # on_start of the current instance has run
        self._supervision = supervision
        self._supervisor: Supervisor | None = None  # made at the first failure
        self._dispatching = False  # a task is serving the mailbox (at most one)
        self._queued_work: list[_Work] | None = None  # work to start once the mailbox is empty
        self._children: set[_Work] | None = None  # running (or about to run) work
        self._live = 0  # work started and not yet returned
        self._working = 0  # tasks running work that serve the mailbox once it is over
        self._idle: Event | None = None  # set when _live drops to 0, made by a waiter
        self._failure: BaseException | None = None
        self._finishing = False  # the stop sequence has begun (it runs once)
        self._done: Event | None = None  # made on demand: most actors are never joined
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

    # -- scheduling ------------------------------------------------------------------------------
    def start(self) -> None:
        """Serve the actor now (it has an on_start to run) rather than at its first message."""
        self._schedule()

    def tell_system(self, message: object) -> None:
        """Queue `message` on the system lane; serve it (see `Actor.interrupt`)."""
        if self.stopping:
            raise self.stopped_error()
        self.mailbox.put_system(message, notify=False)
        if self._dispatching or self.terminated:
            return  # the task serving the mailbox takes system items first
        actor = self._actor
        if self._working and actor is not None and actor.interrupt(message):
            return  # a task running the actor's work serves it once that work is over
        self._schedule()

    async def serve_here(self, message: object) -> None:
        """Tell `message`, and serve the actor in the calling task until it has nothing left
        to do (no mail, no queued work), instead of in a task of its own.

        When another task serves it already, the message is only told. Mail that arrives
        while this task runs the actor's work gets a dispatcher task of its own, as usual.
        """
        if self.stopping:
            raise self.stopped_error()
        if self._dispatching or self.terminated:
            self.mailbox.put_nowait(message)
            return
        self._dispatching = True  # held before telling: no dispatcher task is made for it
        try:
            self.mailbox.put_nowait(message)
        except BaseException:
            self._dispatching = False
            raise
        await self._task(None)

    def _schedule(self) -> None:
        """Mail arrived (or there is a start to make): make sure a dispatcher is on its way."""
        if not self._dispatching and not self.terminated:
            self._dispatching = True  # taken now, so that one task at a time serves the mailbox
            self.system._spawn(self._task, self.name, None)

    async def _task(self, work: _Work | None) -> None:
        """A task of this actor: `work` first (if any); then, while it is the one free to, it
        serves the mailbox (holding the dispatcher role) and runs the work queued meanwhile.

        One coroutine for all of it: every frame here lives as long as a parked run does.
        """
        serving = work is None  # a dispatcher task holds the role from its start
        try:
            while True:
                if work is not None:
                    self._working += 1  # this task serves the mailbox after the work
                    try:
                        await self._run_work(work)
                    finally:
                        self._working -= 1
                    # The work is over: serve what arrived meanwhile, unless another task is.
                    if not self._needs_serving():
                        return
                    self._dispatching = serving = True
                await self._handle_all(True)  # just scheduled: no yield before the first item
                if self.terminated or self._finishing:
                    return
                self._dispatching = serving = False
                work = self._take_work()
                if work is None:
                    return
        except BaseException as exc:
            if not serving:
                raise  # work cancelled (or failed) outside message handling: _run_work's part
            if isinstance(exc, self.system._cancelled_exc):
                # The system is being torn down: stop this actor (shielded and bounded).
                await self._finish(failure=None)
                raise
            # Not a supervised failure (e.g. KeyboardInterrupt): the system re-raises it.
            await self._finish(failure=exc)
            self.system._crash(exc)

    async def _handle_all(self, fresh: bool) -> None:
        """Run on_start if due, then handle messages until the mailbox is empty or a stop."""
        while True:
            actor = self._actor
            if actor is None or self._finishing:
                return  # stopped before this task got to run
            if self._failure is None and not self._started:
                self._started = True
                if type(actor).on_start is not Actor.on_start:
                    await self._call(actor.on_start, None)
            if self._failure is not None:
                if not await self._after_failure():
                    return  # stopped (or escalated): the stop sequence has run
                fresh = True
                continue  # restarted: a new instance goes on with the same mailbox
            item = self.mailbox.poll(_NOTHING)
            if item is _NOTHING:
                return
            if item is STOP:
                await self._finish(failure=None)
                return
            if not fresh:
                # One scheduling point between two messages, so that a busy actor stays fair
                # to the rest of the loop. Cancelled here, the item goes back first.
                try:
                    await checkpoint()
                except BaseException:
                    self.mailbox.unget(item)
                    raise
            fresh = False
            if isinstance(item, Ask):
                await self._call(actor.receive, item)
            else:
                try:
                    await actor.receive(item)
                except BaseException as exc:
                    if isinstance(exc, self.system._cancelled_exc):
                        raise
                    self._fail(exc)

    async def _call(self, fn: Callable[..., Awaitable[Any]], ask: Ask | None) -> None:
        """Run on_start, or a handler that answers an ask; a failure is the actor's."""
        reply = ask.reply if ask is not None else None
        try:
            result = await (fn() if ask is None else fn(ask.message))
        except BaseException as exc:
            if reply is not None:
                reply.fail(exc if isinstance(exc, Exception) else self.stopped_error())
            if isinstance(exc, self.system._cancelled_exc):
                raise
            self._fail(exc)
            return
        if reply is not None:
            reply.succeed(result)

    # -- work beside message handling ------------------------------------------------------------
    def start_child(
        self, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...], name: object
    ) -> None:
        """Run `func(*args)` in a task of its own, now."""
        if self.terminated or self._finishing:
            raise RuntimeError(f"actor {self.name!r} is not running: cannot start a child task")
        if name is None:
            name = f"{self.name}/{getattr(func, '__qualname__', func)}"
        self._spawn_work(_Work(func, args, False, None), str(name))

    def start_work(
        self,
        func: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        cancel: Callable[[], object] | None,
    ) -> None:
        """Run `func(*args)` once the current message is handled, in this task when it is free.

        Outside message handling (no dispatcher), it starts in a task of its own at once.
        """
        if self.terminated or self._finishing:
            raise RuntimeError(f"actor {self.name!r} is not running: cannot start work")
        work = _Work(func, args, True, cancel)
        if not self._dispatching:
            self._spawn_work(work, self.name)
        elif self._queued_work is None:
            self._queued_work = [work]
        else:
            self._queued_work.append(work)

    def _take_work(self) -> _Work | None:
        """Take the first queued work (registered, ready to run here); spawn the others."""
        queued = self._queued_work
        if not queued:
            return None
        self._queued_work = None
        for other in queued[1:]:  # work beyond the first cannot share this task: one task each
            self._spawn_work(other, self.name)
        return self._register(queued[0])

    def _spawn_work(self, work: _Work, name: str) -> None:
        # Registered before its task starts, so that stopping the actor meanwhile cancels it.
        self.system._spawn(self._task, name, self._register(work))

    def _register(self, work: _Work) -> _Work:
        """Count `work` as running, cancelled when the actor stops."""
        children = self._children
        if children is None:
            children = self._children = set()
        children.add(work)
        self._live += 1
        return work

    def _needs_serving(self) -> bool:
        """Whether this free task should become the dispatcher (nobody else serves the mail)."""
        if self._dispatching or self._finishing or self.terminated:
            return False
        return self.mailbox.has_items() or self._failure is not None

    async def _run_work(self, work: _Work) -> None:
        """Run one registered piece of work (under a scope of its own unless it cancels itself).

        What `start_work`'s function returns (if not None) becomes this actor's next message.
        """
        try:
            if work.scope is not None:
                with work.scope:
                    result = await work.func(*work.args)
            else:
                result = await work.func(*work.args)
            if work.deliver and result is not None and not self.mailbox.closed:
                self.mailbox.put_own(result)  # served next, by this task or the dispatcher
        except BaseException as exc:
            if isinstance(exc, self.system._cancelled_exc):
                raise
            self._fail(exc)
        finally:
            assert self._children is not None
            self._children.discard(work)
            self._live -= 1
            if self._live == 0 and self._idle is not None:
                self._idle.set()

    # -- failure, restart and stop ----------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        """Record a failure of the current instance; its work is cancelled at once."""
        failure = self._failure
        if failure is None or (isinstance(failure, Exception) and not isinstance(exc, Exception)):
            self._failure = exc
        self._cancel_work()
        if not self._dispatching and not self.terminated:
            # Nobody serves the mailbox now: a dispatcher applies the supervision strategy.
            self._schedule()

    def _cancel_work(self) -> None:
        for work in list(self._children or ()):
            work.stop()

    async def _after_failure(self) -> bool:
        """Apply the strategy to the recorded failure: True if a new instance goes on."""
        failure = self._failure
        assert failure is not None
        if not isinstance(failure, Exception):
            # KeyboardInterrupt and the like are not supervised: stop, then raise it up.
            await self._finish(failure=failure)
            raise failure
        if self._supervisor is None:
            self._supervisor = Supervisor(self._supervision)
        directive = self._supervisor.decide(anyio.current_time())
        if directive is Directive.RESTART and not self.stopping:
            logger.warning("actor %r failed; restarting it", self.name, exc_info=failure)
            await self._end_instance()
            try:
                actor = self._factory()
            except Exception as exc:
                logger.error("actor %r could not be restarted; stopping it", self.name)
                self._failure = exc
                await self._finish(failure=exc)
                return False
            actor._actor_cell = self
            self._actor, self._started, self._failure = actor, False, None
            return True
        if directive is Directive.ESCALATE:
            logger.error("actor %r failed; escalating", self.name, exc_info=failure)
            await self._finish(failure=failure)
            self.system._escalate(self.name, failure)
        else:
            logger.error("actor %r failed; stopping it", self.name, exc_info=failure)
            await self._finish(failure=failure)
        return False

    async def _end_instance(self) -> None:
        """Cancel the current instance's work, wait for it, then run its on_stop."""
        self._cancel_work()
        if self._live:
            # Shielded: this also runs while the actor is being cancelled; bounded, so that
            # work that will not end cannot hold up the system (its task is still awaited by
            # the system's task group when the system closes).
            with anyio.move_on_after(self.system.stop_timeout, shield=True):
                while self._live:
                    idle = self._idle = new_event()
                    await idle.wait()
            self._idle = None
        actor = self._actor
        if actor is not None and actor.needs_on_stop():
            await self._call_on_stop(actor)

    async def _finish(self, failure: BaseException | None) -> None:
        """Stop for good: refuse mail, end the instance, free everything (once)."""
        if self._finishing or self.terminated:
            return
        self._finishing = True
        self._close_mailbox()
        try:
            await self._end_instance()
        finally:
            self._terminate()

    async def finish_on_cancel(self) -> None:
        """The system is being cancelled and no dispatcher serves this actor: stop it here."""
        await self._finish(failure=None)

    def claim_finishing(self) -> bool:
        """True if the system must stop this actor itself (no dispatcher will); claims it."""
        if self.terminated or self._finishing or self._dispatching:
            return False
        self._dispatching = True  # no dispatcher is scheduled from now on: the stop task serves
        return True

    def request_stop(self) -> None:
        """Post a stop on the system lane (once)."""
        if not self.stopping:
            self.stopping = True
            if not self.mailbox.closed:
                self.mailbox.put_system(STOP)

    async def wait_stopped(self) -> None:
        if self.terminated:
            return
        if self._done is None:
            self._done = new_event()
        await self._done.wait()

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
        self.terminated = True
        self._dispatching = False
        self.system._unregister(self)
        # A stopped actor is never built again. Dropping the factory (which usually holds the
        # instance, and the instance holds this cell) breaks a reference cycle, so the actor
        # is freed at once instead of waiting for a full garbage collection.
        self._factory = _no_factory
        self._actor = None
        self._queued_work = None
        if self._done is not None:
            self._done.set()
