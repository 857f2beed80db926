"""The flow-run actor: one flow run, driven by the state commands in its mailbox.

Each command is handled by the engine method of the same role as Prefect's flow engine
(`begin_run`, `handle_success`, `handle_exception`, `handle_timeout`, `handle_crash`,
`handle_cancellation`); every one of them proposes states through `set_state`, which runs the
matching hooks through `call_hooks`. The actor is the only writer of its run's record. The
user function runs as the actor's work (`_attempt`): in the actor's own task when it is free
(async flows) or in a worker thread (sync flows); how it ended is the actor's next command.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from actors import Actor, Event, new_event

from ._attempt import Attempt, invoke_async, invoke_sync, make_context, run_attempt
from ._classify import crash_message
from ._hooks import hooks_for_state
from ._seed import SeedSurface
from ._slots import Places, Slot
from ._upstreams import has_upstreams
from ._waits import Waits, acquire_place, resolve, sleep_then_retry
from .commands import (
    Begin,
    Cancel,
    Command,
    Crash,
    Fail,
    Pause,
    PauseExpired,
    Resolved,
    Resume,
    Retry,
    Succeed,
    Timeout,
)
from .context import _current, current_run_context
from .errors import (
    CancelledRun,
    CrashedRun,
    FlowPauseTimeout,
    FlowRunTimeoutError,
    OwnershipLost,
    ParameterTypeError,
    ResultEncodeError,
    StoreError,
)
from .policy import Decision, Status
from .results import encode_result
from .states import (
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    Paused,
    Running,
    State,
    Suspended,
    TimedOut,
)

if TYPE_CHECKING:
    from ._host import Host
    from ._record import RunRecord
    from .flows import Flow
    from .models import FlowRun

__all__ = ["AsyncFlowRunEngine", "BaseFlowRunEngine", "FlowRunEngine", "engine_for"]

logger = logging.getLogger("flowactor.engine")


class BaseFlowRunEngine(SeedSurface, Actor[Command]):
    """The actor behind one flow run. It ends (stops itself) once the run is final.

    `AsyncFlowRunEngine` runs async flows in the actor's task, `FlowRunEngine` runs sync flows
    in a worker thread; everything else (the handlers) is shared.
    """

    def __init__(self, host: Host, record: RunRecord) -> None:
        self.host = host
        self.record = record
        self.flow: Flow[..., Any] = record.flow
        self._attempts = 0
        self._attempt: Attempt | None = None  # the current (or last) attempt
        self._waits: Waits | None = None  # for upstreams, a place, a retry delay
        self._resolved = False  # upstream runs have been waited for
        self._ready = False  # checked ready to start when created (see ready_to_start)
        self._resumed: Event | None = None  # set when a paused run is resumed
        self._children: dict[str, RunRecord] = {}  # subflows of past attempts, by call number
        # Built in the caller's context: when that is a run of the same runtime, it is this
        # run's parent. A subflow follows its parent's log_prints and persist_result unless it
        # sets its own, and runs under its parent's places (see _slots): a parent waiting for
        # it never holds a place it needs.
        parent = current_run_context()
        if parent is None or parent.engine is None or parent.engine.host is not host:
            self.log_prints = bool(self.flow.log_prints)
            self.persist_result = bool(self.flow.persist_result)
            self._places = _NO_PLACES  # replaced when the run takes a place
        else:
            up: BaseFlowRunEngine = parent.engine
            self.log_prints = _inherit(self.flow.log_prints, up.log_prints)
            self.persist_result = _inherit(self.flow.persist_result, up.persist_result)
            attempt: Attempt | None = parent.attempt
            self._places = up._places.for_subflow(attempt.thread_slot if attempt else None)

    # -- what the run is now (the record holds it once) -------------------------------------------
    @property
    def state(self) -> State:
        """The run's current state."""
        state = self.record.flow_run.state
        assert state is not None
        return state

    @property
    def flow_run(self) -> FlowRun:
        """The run as this actor last wrote it."""
        return self.record.flow_run

    @property
    def attempt(self) -> Attempt | None:
        """The run's current (or last) attempt."""
        return self._attempt

    @property
    def parameters(self) -> dict[str, Any]:
        """The parameters the function is called with."""
        return self.record.parameters

    # -- the mailbox --------------------------------------------------------------------------
    async def receive(self, message: Command) -> Any:
        """Dispatch one command to its handler; commands for a finished attempt are dropped."""
        if self.record.finished:
            return self.state
        attempt = self._attempt
        current = attempt.number if attempt is not None else 0
        try:
            match message:
                case Succeed(attempt=n, value=value) if n == current:
                    await self.handle_success(value)
                case Begin():
                    await self.begin_run()
                case Fail(attempt=n, error=error) if n == current:
                    await self.handle_exception(error)
                case Timeout(attempt=n) if n == current:
                    seconds = self.flow.timeout_seconds or 0
                    await self.handle_timeout(
                        FlowRunTimeoutError(f"Scope timed out after {seconds:g} second(s).")
                    )
                case Cancel(message=text):
                    await self.handle_cancellation(text)
                case Crash(error=error, message=text):
                    await self.handle_crash(error, text)
                case Resolved(parameters=parameters, error=error):
                    await self._upstreams_resolved(parameters, error)
                case Retry():
                    await self._propose_running()
                case Pause(key=key, timeout=timeout, reschedule=reschedule):
                    return await self.handle_pause(key, timeout, reschedule)
                case PauseExpired(key=key):
                    await self.handle_pause_expired(key)
                case Resume(run_input=run_input):
                    return await self.handle_resume(run_input)
        except (StoreError, OwnershipLost) as exc:
            self._abandon(exc)
        return self.state

    def interrupt(self, message: Command) -> bool:
        """A cancel or crash arrives while the attempt (or a wait) runs: stop it at once; the
        task it runs in handles the command as soon as it has unwound (no task is made)."""
        if isinstance(message, Cancel):
            # Set now: a subflow call interrupted by this must see its parent being cancelled.
            self.record.cancel_requested = True
            error: BaseException = CancelledRun(message.message)
        elif isinstance(message, Crash):
            error = CrashedRun(message.message or crash_message(message.error))
        else:
            return False
        attempt = self._attempt
        if not (attempt is not None and attempt.running) and not self._waits:
            return False
        self.stop_work(error)
        return True

    def needs_on_stop(self) -> bool:
        """Only an unfinished run has anything to do when its actor stops."""
        return not self.record.finished

    async def on_stop(self) -> None:
        """The actor is going away with the run unfinished: the owner is gone, so it crashed."""
        if not self.record.finished:
            reason = self.host.crash_reason
            try:
                await self.handle_crash(CrashedRun(reason), reason)
            except (StoreError, OwnershipLost) as exc:
                self._abandon(exc)

    # -- handlers -------------------------------------------------------------------------
    def ready_to_start(self) -> bool:
        """Whether the run can go Running as soon as it is created (asked before it is).

        True when it waits for no upstream run and no place (taking a free one now), and its
        name and parameters are good (validated here): then it is created Pending and Running
        together, and `begin_run` starts its attempt at once.
        """
        record = self.record
        if record.wait_for or record.name_error is not None or has_upstreams(record.parameters):
            return False
        if self.flow.validate_parameters:
            try:
                record.parameters = self.flow.validate_parameters_for(record.parameters)
            except ParameterTypeError:
                return False  # begin_run validates again, and fails the run
        limit = self.host.run_slots
        if limit is not None and self._places.run is None:
            slot = limit.try_acquire()
            if slot is None:
                return False
            self._places = Places(slot)
        self._ready = True
        return True

    def give_back(self) -> None:
        """The run was not created after all (the store refused it): free what it took."""
        self._places.release()

    async def begin_run(self) -> None:
        """Validate parameters and the run name, then propose Running and start the attempt."""
        record = self.record
        if self._ready and self.state.is_running():
            # Created Pending and Running together: the attempt starts now.
            await self.call_hooks(self.state)
            record.mark_began()
            self._start_attempt()
            return
        if not self._resolved and (record.wait_for or has_upstreams(record.parameters)):
            # Waited for beside the mailbox, so that a cancel still gets through meanwhile.
            self._wait(resolve, record.parameters, record.wait_for)
            return
        if record.name_error is not None:
            error = record.name_error
            message = f"Could not name the flow run: {type(error).__name__}: {error}"
            await self._fail_before_running(error, message)
            return
        if self.flow.validate_parameters:
            try:
                record.parameters = self.flow.validate_parameters_for(record.parameters)
            except ParameterTypeError as exc:
                message = (
                    f"Validation of flow parameters failed with error: ParameterTypeError: {exc}"
                )
                logger.error("%s", message)
                await self._fail_before_running(exc, message)
                return
        limit = self.host.run_slots
        if limit is not None and self._places.run is None:
            if self._places is _NO_PLACES:
                self._places = Places()
            self._wait(acquire_place, self._places, limit)
            return
        await self._propose_running()

    async def handle_success(self, value: Any) -> None:
        """The attempt returned: Completed (or the state it returned), or a retry."""
        # A returned state is used as given (a returned Failed retries like a raise).
        returned_state = isinstance(value, State)
        state = value if returned_state else Completed(data=value)
        self.record.value = value
        if self.persist_result and not returned_state:
            # Encode before proposing, so a value the store cannot keep fails the run here.
            try:
                state = Completed(data=encode_result(value, self.flow.result_serializer))
            except ResultEncodeError as exc:
                logger.error("Flow run %r: %s", self.flow_run.name, exc)
                self.record.error = exc
                state = Failed(message=str(exc), data=exc)
        decision = await self.set_state(state)
        await self._after_attempt(decision)

    async def handle_exception(self, error: BaseException) -> None:
        """The attempt raised: Failed, or AwaitingRetry then Running when retries are left."""
        logger.error(
            "Flow run %r: encountered exception during execution: %r", self.flow_run.name, error
        )
        self.record.error = error
        if isinstance(error, TimeoutError):
            # Any TimeoutError from user code counts as a timeout (named TimedOut), as in Prefect.
            message = f"Flow run failed due to timeout: {error!r}"
            decision = await self.set_state(TimedOut(message=message, data=error))
        else:
            message = f"Flow run encountered an exception: {type(error).__name__}: {error}"
            decision = await self.set_state(Failed(message=message, data=error))
        await self._after_attempt(decision)

    async def handle_timeout(self, error: TimeoutError) -> None:
        """The attempt overran `timeout_seconds`: Failed named TimedOut (retried like a failure)."""
        self.stop_work(error)  # a sync flow's thread is abandoned here; it can check_cancelled()
        seconds = self.flow.timeout_seconds or 0
        message = f"Flow run exceeded timeout of {seconds:g} second(s)"
        logger.error("Flow run %r: %s", self.flow_run.name, message)
        self.record.error = error
        decision = await self.set_state(TimedOut(message=message, data=error))
        await self._after_attempt(decision)

    async def handle_crash(self, error: BaseException, message: str | None = None) -> None:
        """A BaseException that is not a requested cancel, or the owner went away: Crashed."""
        message = message or crash_message(error)
        logger.error("Flow run %r: crash detected! %s", self.flow_run.name, message)
        self.record.error = error
        self.stop_work(CrashedRun(message))
        await self._wait_attempt_ended()  # its subflows end (crashed) before it does
        if self.state.is_cancelling():
            # Cancelling may only end Cancelled; never leave the run there.
            await self.set_state(Cancelled(message=message, data=error))
        else:
            decision = await self.set_state(Crashed(message=message, data=error))
            if decision.state.is_cancelling():  # a cancel requested elsewhere came first
                await self.set_state(Cancelled(message=message, data=error))
        self._finish()

    async def handle_cancellation(self, message: str) -> None:
        """Cancel requested: Cancelling (on_cancellation hooks), stop the work, then Cancelled."""
        self.record.cancel_requested = True
        decision = await self.set_state(Cancelling(message=message))
        if not decision.state.is_cancelling():
            if decision.state.is_final():
                self._finish()
            return  # the run ended first: the first final state wins
        if decision.run is None:
            # Cancelling was recorded by whoever asked (another process): the hooks are ours.
            await self.call_hooks(decision.state)
        self.stop_work(CancelledRun(message))
        await self._wait_attempt_ended()
        await self.set_state(Cancelled(message=message))
        self._finish()

    async def handle_pause(
        self, key: str, seconds: float | None, reschedule: bool
    ) -> tuple[State, Event | None]:
        """Propose Paused (or Suspended); a suspended run's actor ends here, freeing its memory.

        Answers the pausing code with the state the run is in afterwards (Paused/Suspended, or
        Running when this pause key has already fired) and the event set when it is resumed.
        """
        state = (Suspended if reschedule else Paused)(timeout_seconds=seconds, pause_key=key)
        decision = await self.set_state(state)
        if decision.state.is_paused():
            self._resumed = new_event()
            if reschedule:
                # Suspended: nothing runs until someone resumes it, and then the flow is loaded
                # again from its entrypoint. Stop the attempt and let this actor go.
                self.stop_work(CancelledRun("the flow run was suspended"))
                self._finish()
        return decision.state, self._resumed

    async def handle_pause_expired(self, key: str) -> None:
        """The pause timed out: the run ends Failed (no retry: it was not Running)."""
        if self.state.is_paused() and self.state.details.pause_key == key:
            message = "The flow was paused and never resumed."
            decision = await self.set_state(Failed(message=message, data=FlowPauseTimeout(message)))
            if decision.state.is_final():
                self._finish()

    async def handle_resume(self, run_input: Any) -> State:
        """Resume a paused run: Running again, and the paused code gets `run_input`."""
        if not self.state.is_paused():
            return self.state
        key = self.state.details.pause_key
        decision = await self.set_state(Running())
        if decision.state.is_running():
            if key is not None:
                self.host.run_inputs[(self.flow_run.id, key)] = run_input
            if self._resumed is not None:
                self._resumed.set()
        elif decision.state.is_final():
            self._finish()
        return decision.state

    async def set_state(self, state: State, *, force: bool = False) -> Decision:
        """Propose `state` to the store and run the hooks of whatever state it wrote."""
        store = self.host.store
        record = self.record
        run_id = record.flow_run.id
        owner = record.flow_run.owner  # fenced: refused once the run is no longer ours
        if store.writes_never_wait:
            # The write cannot suspend, so no cancellation can cut it short: nothing to shield.
            decision = await store.set_state(run_id, state, force=force, owner=owner)
        else:
            # Shielded: the write must land even while the run, the runtime or the whole app is
            # being cancelled. Bounded by the store's progress rather than by this write's own
            # wait: the store raises StoreStalled once it has committed nothing for
            # persist_timeout, so a stuck store cannot hang cancellation or shutdown, while
            # thousands of runs ending at once wait their turn in a store that keeps committing.
            with anyio.CancelScope(shield=True):
                decision = await store.set_state(
                    run_id,
                    state,
                    force=force,
                    stall_timeout=self.host.persist_timeout,
                    owner=owner,
                )
        if decision.status is Status.FENCED:
            raise OwnershipLost(decision.reason, decision.state)  # see _abandon
        if decision.run is not None:
            record.flow_run = decision.run
            if hooks_for_state(self.flow, decision.state):
                await self.call_hooks(decision.state)
        else:
            if decision.status is Status.ABORT:
                logger.warning("Flow run %r: %s", record.flow_run.name, decision.reason)
            if decision.state is not record.flow_run.state:
                # Not written: the store holds another state (another process wrote it).
                record.flow_run = msgspec.structs.replace(record.flow_run, state=decision.state)
        return decision

    async def call_hooks(self, state: State) -> None:
        """Run the flow's hooks for `state`, in order; a hook that raises is logged and skipped."""
        hooks = hooks_for_state(self.flow, state)
        if not hooks:
            return
        reset = _current.set(make_context(self, self._attempt, self.log_prints))
        try:
            for hook in hooks:
                await self.host.hooks.call(hook, self.flow, self.flow_run, state)
        finally:
            _current.reset(reset)

    # -- the attempt ---------------------------------------------------------------------
    def _invoke(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], attempt: Attempt
    ) -> Awaitable[Any]:
        """What to await for one attempt of the user function: its value."""
        raise NotImplementedError

    # -- internals ------------------------------------------------------------------------
    async def _propose_running(self) -> None:
        decision = await self.set_state(Running())
        if decision.status is Status.WAIT:
            self._wait(sleep_then_retry, decision.delay)
        elif decision.state.is_running():
            self.record.mark_began()
            self._start_attempt()
        elif decision.state.is_final():
            self._finish()

    async def _after_attempt(self, decision: Decision) -> None:
        state = decision.state
        if state.is_scheduled():
            logger.info(
                "Flow run %r: received non-final state %r when proposing a final state "
                "and will attempt to run again...",
                self.flow_run.name,
                state.name,
            )
            await self._propose_running()
        elif state.is_cancelling():
            # The flow returned Cancelling: finish the job rather than stay there for ever.
            await self.set_state(Cancelled(message=state.message))
            self._finish()
        elif state.is_final() or state.is_paused():
            # A returned Paused leaves the run paused, waiting for resume_flow_run.
            self._finish()

    async def _fail_before_running(self, error: BaseException, message: str) -> None:
        self.record.error = error
        decision = await self.set_state(Failed(message=message, data=error))
        if decision.state.is_final():
            self._finish()

    async def _upstreams_resolved(self, parameters: Any, error: BaseException | None) -> None:
        if error is not None:
            # Terminal, never a run stuck Pending for ever waiting on an upstream that failed.
            await self._fail_before_running(error, str(error))
            return
        self.record.parameters = parameters
        self._resolved = True
        await self.begin_run()

    def _wait(self, fn: Callable[..., Awaitable[Command]], *args: Any) -> None:
        """Wait beside the mailbox (a cancel still gets through); `fn`'s answer comes next."""
        if self._waits is None:
            self._waits = Waits()
        self._waits.start(self, fn, *args)

    def lent_thread_slot(self) -> Slot | None:
        """The place a blocked sync ancestor's thread lent this run's sync attempts, if any."""
        return self._places.lent_thread

    def _start_attempt(self) -> None:
        """Start the next attempt as this actor's work (in its own task when it is free)."""
        self._attempts += 1
        previous = self._attempt
        if previous is not None and previous.started:
            self._children.update(previous.started)
        attempt = self._attempt = Attempt(self._attempts, self._children)
        # run_attempt itself, not call_flow_fn (its seed name): one frame less per live run.
        self.start_work(run_attempt, self, attempt, cancel=attempt.scope.cancel)

    def stop_work(self, error: BaseException) -> None:
        """Stop every piece of this run's work; a sync thread sees `error` via check_cancelled."""
        attempt = self._attempt
        if attempt is not None and attempt.running:
            attempt.stop(error)
        if self._waits is not None:
            self._waits.cancel_all()

    async def _wait_attempt_ended(self) -> None:
        """After stopping the attempt, give it a bounded moment to unwind (finally blocks, its
        own subflows). A sync flow's thread is abandoned at once: it cannot be stopped."""
        attempt = self._attempt
        if attempt is not None:
            await attempt.wait_ended(self.host.cancel_grace)

    def _abandon(self, error: Exception) -> None:
        """The store could not record this run's state: end the actor, never leave waiters hanging.

        The waiters see Crashed (kept in memory only). The store still shows the last state it
        committed; the run's owner lease lapses and recovery ends it Crashed there too. A run
        that is no longer ours (`OwnershipLost`) ends here with the state the store holds.
        """
        record = self.record
        if isinstance(error, OwnershipLost):
            logger.warning(
                "Flow run %r: %s It is stopped here and left as the store has it (%s).",
                record.flow_run.name,
                error,
                error.state.name,
            )
            record.error = None  # the run's outcome is the store's, not this attempt's
            record.flow_run = msgspec.structs.replace(record.flow_run, state=error.state)
            self._finish()
            return
        logger.error(
            "Flow run %r: its state could not be recorded (%s); it is left to recovery",
            self.flow_run.name,
            error,
        )
        record.error = error
        message = f"The run's state could not be recorded: {error}"
        crashed = Crashed(message=message, data=error)
        record.flow_run = msgspec.structs.replace(record.flow_run, state=crashed)
        self._finish()

    def _finish(self) -> None:
        """The run is final: wake its waiters, free its places, end the actor."""
        record = self.record
        if record.finished:
            return
        self.stop_work(CancelledRun("the flow run has finished"))
        self._places.release()
        self.host.forget(record)
        if record.items is not None:
            record.items.close()  # a generator run's consumer sees the end of its values
        record.actor = None
        record.mark_finished()
        self.ref.stop()


class AsyncFlowRunEngine(BaseFlowRunEngine):
    """Runs an async flow: each attempt awaits the function in the actor's own task."""

    def _invoke(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], attempt: Attempt
    ) -> Awaitable[Any]:
        return invoke_async(self, args, kwargs, attempt)


class FlowRunEngine(BaseFlowRunEngine):
    """Runs a sync flow: each attempt calls the function in a worker thread.

    At the deadline (or on cancel) the thread is abandoned: the run is recorded at once, the
    thread runs on until the function returns, and it can stop early via `check_cancelled()`.
    """

    def _invoke(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], attempt: Attempt
    ) -> Awaitable[Any]:
        return invoke_sync(self, args, kwargs, attempt)


_NO_PLACES = Places()  # what a top-level run under no limit holds (shared, never changed)


def _inherit(own: bool | None, parents: bool | None) -> bool:
    return bool(parents) if own is None else own


def engine_for(flow: Flow[..., Any]) -> type[BaseFlowRunEngine]:
    """The engine class that runs `flow`."""
    return AsyncFlowRunEngine if flow.isasync else FlowRunEngine
