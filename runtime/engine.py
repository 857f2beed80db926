"""The flow-run actor: one flow run, driven by the state commands in its mailbox.

Each command is handled by the engine method of the same role as Prefect's flow engine
(`begin_run`, `handle_success`, `handle_exception`, `handle_timeout`, `handle_crash`,
`handle_cancellation`); every one of them proposes states through `set_state`, which runs the
matching hooks through `call_hooks`. The user function runs in a child task of the actor (async
flows) or in a worker thread (sync flows) and reports how it ended by telling the actor.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import logging
import types
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from actors import Actor, ActorStopped

from ._classify import Outcome, classify, crash_message
from ._creation import new_flow_run
from ._generators import iterate_async, iterate_sync
from ._slots import Limit, Slot
from ._upstreams import UpstreamFailed, has_upstreams, resolve_upstreams
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
from .context import (
    RunContext,
    _current,
    _Interrupt,
    current_run_context,
    install_print_hook,
    interrupt_error,
)
from .errors import (
    CancelledRun,
    CrashedRun,
    FlowPauseTimeout,
    FlowRunTimeoutError,
    OwnershipLost,
    ParameterTypeError,
    StoreError,
)
from .models import FlowRun
from .parameters import call_args
from .policy import Decision, Status
from .states import (
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    Paused,
    Running,
    State,
    StateType,
    Suspended,
    TimedOut,
)

if TYPE_CHECKING:
    from ._threads import ThreadRunner
    from .flows import Flow
    from .runtime import Runtime, _RunRecord
    from .stores import Store

__all__ = [
    "AsyncFlowRunEngine",
    "BaseFlowRunEngine",
    "FlowRunEngine",
    "engine_for",
]

logger = logging.getLogger("flowactor.engine")

_HOOKS_FOR = {
    StateType.RUNNING: "on_running",
    StateType.COMPLETED: "on_completion",
    StateType.FAILED: "on_failure",
    StateType.CANCELLING: "on_cancellation",
    StateType.CRASHED: "on_crashed",
}


class BaseFlowRunEngine(Actor[Command]):
    """The actor behind one flow run. It ends (stops itself) once the run is final.

    `AsyncFlowRunEngine` runs async flows in a child task of the actor, `FlowRunEngine` runs
    sync flows in a worker thread; everything else (the handlers) is shared.
    """

    def __init__(self, runtime: Runtime, record: _RunRecord) -> None:
        self.runtime = runtime
        self.record = record
        self.flow: Flow[..., Any] = record.flow
        self.flow_run: FlowRun = record.flow_run
        self.parameters: dict[str, Any] = record.parameters
        assert record.flow_run.state is not None
        self.state: State = record.flow_run.state
        self._attempt = 0
        self._attempt_running = False
        self._attempt_stopped = False  # the current attempt was cancelled by _stop_work
        self._attempt_done: anyio.Event | None = None  # made only when someone waits for it
        self._interrupt: _Interrupt | None = None
        # Scopes of the child tasks doing this run's work: the attempt's, and any others (a
        # retry wait, a wait for a concurrency slot; a set made only when there are some).
        # Cancelling the run cancels them all.
        self._attempt_scope: anyio.CancelScope | None = None
        self._work: set[anyio.CancelScope] | None = None
        # persist_result and log_prints left unset (None) on a subflow follow its parent's run:
        # this engine is built in the caller's context, so the current run is the parent.
        parent = current_run_context()
        # Places under the runtime's limits (see _slots): a subflow shares its parent's, so a
        # parent waiting for it never holds a place it needs. The run slot is taken in begin_run
        # by a top-level run; the thread slot, lent by a blocked sync ancestor, by each thread.
        self._run_slot: Slot | None = None
        self._lent_thread: Slot | None = None
        self._thread_slot: Slot | None = None  # the current attempt's thread's, while it runs
        if parent is not None and parent.engine is not None and parent.runtime is runtime:
            self._run_slot, self._lent_thread = parent.engine._slots_for_subflow()
        self._log_prints = _inherit(self.flow.log_prints, parent.log_prints if parent else None)
        parent_persist = parent.engine._persist_result if parent and parent.engine else None
        self._persist_result = _inherit(self.flow.persist_result, parent_persist)
        self._resolved = False
        self._resumed: anyio.Event | None = None  # set when a paused run is resumed
        self._pause_count = 0  # default pause keys "1", "2", ... per attempt
        self._subflow_count = 0  # subflow calls of the current attempt
        self._children: dict[str, _RunRecord] = {}  # by subflow call number, across attempts
        self.deadline: anyio.CancelScope | None = None  # the current attempt's deadline

    # -- the mailbox --------------------------------------------------------------------------
    async def receive(self, message: Command) -> State:
        """Dispatch one command to its handler; commands for a finished attempt are dropped."""
        if self.record.finished:
            return self.state
        try:
            match message:
                case Begin():
                    await self.begin_run()
                case Resolved(parameters=parameters, error=error):
                    await self._upstreams_resolved(parameters, error)
                case Retry():
                    await self._propose_running()
                case Succeed(attempt=n, value=value) if n == self._attempt:
                    await self.handle_success(value)
                case Fail(attempt=n, error=error) if n == self._attempt:
                    await self.handle_exception(error)
                case Timeout(attempt=n) if n == self._attempt:
                    seconds = self.flow.timeout_seconds or 0
                    await self.handle_timeout(
                        FlowRunTimeoutError(f"Scope timed out after {seconds:g} second(s).")
                    )
                case Crash(error=error, message=text):
                    await self.handle_crash(error, text)
                case Cancel(message=text):
                    await self.handle_cancellation(text)
                case Pause(key=key, timeout=timeout, reschedule=reschedule):
                    return await self.handle_pause(key, timeout, reschedule)
                case PauseExpired(key=key):
                    await self.handle_pause_expired(key)
                case Resume(run_input=run_input):
                    return await self.handle_resume(run_input)
        except (StoreError, OwnershipLost) as exc:
            self._abandon(exc)
        return self.state

    def needs_on_stop(self) -> bool:
        """Only an unfinished run has anything to do when its actor stops."""
        return not self.record.finished

    async def on_stop(self) -> None:
        """The actor is going away with the run unfinished: the owner is gone, so it crashed."""
        if not self.record.finished:
            reason = self.runtime._crash_reason
            try:
                await self.handle_crash(CrashedRun(reason), reason)
            except (StoreError, OwnershipLost) as exc:
                self._abandon(exc)

    # -- handlers -------------------------------------------------------------------------
    async def begin_run(self) -> None:
        """Validate parameters and the run name, then propose Running and start the attempt."""
        if not self._resolved and (self.record.wait_for or has_upstreams(self.parameters)):
            # Wait for upstream runs in a child task, so a cancel still gets through.
            self._spawn(self._resolve_upstreams)
            return
        if self.record.name_error is not None:
            error = self.record.name_error
            message = f"Could not name the flow run: {type(error).__name__}: {error}"
            await self._fail_before_running(error, message)
            return
        if self.flow.validate_parameters:
            try:
                self.parameters = self.flow.validate_parameters_for(self.parameters)
            except ParameterTypeError as exc:
                message = (
                    f"Validation of flow parameters failed with error: ParameterTypeError: {exc}"
                )
                logger.error("%s", message)
                await self._fail_before_running(exc, message)
                return
        slots = self.runtime._run_slots
        if slots is not None and self._run_slot is None:
            # Wait for a slot in a child task, so the mailbox stays open (a cancel gets through).
            self._spawn(self._acquire_slot, slots)
            return
        await self._propose_running()

    async def handle_success(self, value: Any) -> None:
        """The attempt returned: Completed (or the state it returned), or a retry."""
        # A returned state is used as given (a returned Failed retries like a raise).
        state = value if isinstance(value, State) else Completed(data=value)
        self.record.value = value
        if self._persist_result and not isinstance(value, State):
            from .errors import ResultEncodeError
            from .results import encode_result

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
        self._stop_work(error)  # a sync flow's thread is abandoned here; it can check_cancelled()
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
        self._stop_work(CrashedRun(message))
        await self._wait_attempt_unwound()  # its subflows end (crashed) before it does
        if self.state.is_cancelling():
            # Cancelling may only end Cancelled; never leave the run there.
            await self.set_state(Cancelled(message=message, data=error))
        else:
            await self.set_state(Crashed(message=message, data=error))
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
        self._stop_work(CancelledRun(message))
        await self._wait_attempt_unwound()
        await self.set_state(Cancelled(message=message))
        self._finish()

    async def handle_pause(self, key: str, seconds: float | None, reschedule: bool) -> State:
        """Propose Paused (or Suspended); a suspended run's actor ends here, freeing its memory.

        Answers the pausing code with the state the run is in afterwards: Paused/Suspended,
        or Running when this pause key has already fired (the run was resumed before).
        """
        state = (Suspended if reschedule else Paused)(timeout_seconds=seconds, pause_key=key)
        decision = await self.set_state(state)
        if decision.state.is_paused():
            self._resumed = anyio.Event()
            if reschedule:
                # Suspended: nothing runs until someone resumes it, and then the flow is loaded
                # again from its entrypoint. Stop the attempt and let this actor go.
                self._stop_work(CancelledRun("the flow run was suspended"))
                self._finish()
        return decision.state

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
                self.runtime._run_inputs[(self.flow_run.id, key)] = run_input
            if self._resumed is not None:
                self._resumed.set()
        elif decision.state.is_final():
            self._finish()
        return decision.state

    async def set_state(self, state: State, *, force: bool = False) -> Decision:
        """Propose `state` to the store and run the hooks of whatever state it wrote."""
        store = self.runtime.store
        owner = self.flow_run.owner  # fenced: refused once the run is no longer ours
        if store.writes_never_wait:
            # The write cannot suspend, so no cancellation can cut it short: nothing to shield.
            decision = await store.set_state(self.flow_run.id, state, force=force, owner=owner)
        else:
            # Shielded: the write must land even while the run, the runtime or the whole app is
            # being cancelled. Bounded by the store's progress rather than by this write's own
            # wait: the store raises StoreStalled once it has committed nothing for
            # persist_timeout, so a stuck store cannot hang cancellation or shutdown, while
            # thousands of runs ending at once wait their turn in a store that keeps committing.
            with anyio.CancelScope(shield=True):
                decision = await store.set_state(
                    self.flow_run.id,
                    state,
                    force=force,
                    stall_timeout=self.runtime.persist_timeout,
                    owner=owner,
                )
        if decision.status is Status.FENCED:
            raise OwnershipLost(decision.reason, decision.state)  # see _abandon
        if decision.status is Status.ABORT:
            logger.warning("Flow run %r: %s", self.flow_run.name, decision.reason)
        self.state = decision.state
        if decision.run is not None:
            self.flow_run = self.record.flow_run = decision.run
            await self.call_hooks(decision.state)
        return decision

    async def call_hooks(self, state: State) -> None:
        """Run the flow's hooks for `state`, in order; a hook that raises is logged and skipped."""
        kind = _HOOKS_FOR.get(state.type)
        if kind is None:
            return
        hooks = self.flow.hooks_for(kind)
        if not hooks:
            return
        reset = _current.set(self._context())
        try:
            for hook in hooks:
                await self._call_hook(hook, state)
        finally:
            _current.reset(reset)

    @contextlib.contextmanager
    def setup_run_context(self) -> Iterator[RunContext]:
        """Make this run the current one for the code inside (a fresh context per attempt)."""
        ctx = self._enter_run_context()
        reset = _current.set(ctx)
        try:
            yield ctx
        finally:
            _current.reset(reset)

    def _enter_run_context(self) -> RunContext:
        """A fresh run context for a new attempt, and the attempt's counters reset."""
        ctx = self._context()
        self._interrupt = ctx.interrupt
        self._pause_count = self._subflow_count = 0
        if ctx.log_prints:
            install_print_hook()
        return ctx

    def run_context(
        self, scope: anyio.CancelScope | None = None
    ) -> contextlib.AbstractContextManager[tuple[RunContext, anyio.CancelScope]]:
        """One attempt's surroundings: its run context, its cancel scope and its heartbeat.

        The scope (a new one if not given) carries the attempt's deadline, `timeout_seconds`
        from entering. Leaving it disarms the deadline before any terminal write, so a run
        that returns just in time is never turned into TimedOut afterwards.
        """
        if scope is None:
            scope = anyio.CancelScope()
        timeout = self.flow.timeout_seconds
        if timeout is not None:
            scope.deadline = anyio.current_time() + timeout
        self.deadline = scope
        return _Attempt(self, scope)

    async def call_flow_fn(self, attempt: int, scope: anyio.CancelScope) -> Command | None:
        """Run one attempt of the user function (child task) and tell the actor how it ended.

        `scope` is the attempt's: its deadline is the timeout, and `_stop_work` cancels it.
        """
        flow = self.flow
        outcome: Command | None = None
        interrupt = None
        try:
            with self.run_context(scope) as (ctx, _):
                interrupt = ctx.interrupt
                args, kwargs = call_args(flow.fn, self.parameters)
                outcome = Succeed(attempt, await self._invoke(args, kwargs, scope))
            if scope.cancelled_caught:
                # Stopped by the actor (cancel, crash, ...): the handler that stopped it
                # decides the run's state. Otherwise the deadline passed.
                outcome = None if self._attempt_stopped else Timeout(attempt)
        except Exception as exc:
            # User code may turn the deadline's cancellation into an error of its own.
            timed_out = scope.cancel_called and not self._attempt_stopped
            outcome = Timeout(attempt) if timed_out else Fail(attempt, exc)
        except BaseException as exc:
            if classify(exc) is Outcome.CANCELLED:
                if interrupt is not None:
                    interrupt.set(CancelledRun("the flow run was cancelled"))
                raise  # the actor's teardown: its on_stop decides the state
            outcome = Crash(exc)
        finally:
            if self._attempt_scope is scope:
                self._attempt_scope = None
            self._attempt_running = False
            if self._attempt_done is not None:
                self._attempt_done.set()
        if isinstance(outcome, Timeout) and interrupt is not None:
            interrupt.set(interrupt_error(flow.timeout_seconds))
        return outcome  # the actor's next message (moot if the run was finished meanwhile)

    # -- the seed engine's surface -------------------------------------------------------
    @property
    def client(self) -> Store:
        """The store this engine writes the run's states to."""
        return self.runtime.store

    @property
    def heartbeat_seconds(self) -> float:
        """How often the runtime's one shared timer renews the lease of all its running runs."""
        return self.runtime.heartbeat_seconds

    def is_pending(self) -> bool:
        return self.state.is_pending()

    def is_running(self) -> bool:
        return self.state.is_running()

    def cancel_all_tasks(self) -> None:
        """Cancel the run's work in progress (attempt, retry wait); abandon a sync thread."""
        self._stop_work(CancelledRun("the flow run's tasks were cancelled"))

    def result(self, *, raise_on_failure: bool = True) -> Any:
        """The final run's return value, or raise its error (`UnfinishedRun` before the end)."""
        from .runtime import _result_of

        return _result_of(self.record, raise_on_failure=raise_on_failure)

    @classmethod
    async def create_flow_run(
        cls, runtime: Runtime, flow: Flow[..., Any], parameters: dict[str, Any]
    ) -> tuple[FlowRun, BaseException | None]:
        """Record a new Pending run of `flow`; also returns the error its name template raised.

        A run inside another run's context is that run's child (its parent id is recorded).
        """
        run, name_error = new_flow_run(flow, parameters, runtime._owner_id)
        return await runtime.store.create_flow_run(run), name_error

    def start(self) -> None:
        """Begin the run: the first command in its mailbox (the runtime calls this on spawn)."""
        self.initialize_run()
        self.ref.tell_nowait(Begin())

    def initialize_run(self) -> None:
        """Take what the run holds for the actor's whole life; `_finish` gives it back."""
        self.setup_flow_run_suspension_request()

    def setup_flow_run_suspension_request(self) -> None:
        """Let `suspend_flow_run(flow_run_id=...)` reach this run from other code."""
        self.runtime._suspendable[self.flow_run.id] = self

    def load_subflow_run(self, flow: Flow[..., Any]) -> _RunRecord | None:
        """The child run to reuse for this attempt's next subflow call, if any.

        Subflow calls are numbered per attempt. When this run is retried, a call whose
        earlier child Completed gets that child back: no second execution and no second
        on_completion hook. A child that did not complete is run again (a new run).
        """
        self._subflow_count += 1
        key = str(self._subflow_count)
        previous = self._children.get(key)
        if previous is None or previous.flow is not flow or previous.state is None:
            return None
        return previous if previous.state.is_completed() else None

    def remember_subflow_run(self, record: _RunRecord) -> None:
        """Record the child run started by the current subflow call (see load_subflow_run)."""
        self._children[str(self._subflow_count)] = record

    def _invoke(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], deadline: anyio.CancelScope
    ) -> Awaitable[Any]:
        """What to await for one attempt of the user function (under `deadline`): its value.

        Returns the awaitable rather than awaiting it, so that an attempt's task carries no
        frame of ours between the engine and the user's coroutine.
        """
        raise NotImplementedError

    # -- internals ------------------------------------------------------------------------
    def _context(self) -> RunContext:
        log_prints = self._log_prints
        return RunContext(
            flow=self.flow,
            flow_run=self.flow_run,
            parameters=self.parameters,
            runtime=self.runtime,
            log_prints=log_prints,
            token=self.runtime._loop_token,
            engine=self,
        )

    async def _call_hook(self, hook: Callable[..., Any], state: State) -> None:
        name = getattr(hook, "__name__", repr(hook))
        logger.info("Running hook %r in response to entering state %r", name, state.name)
        # Hooks of final and cancelling states run during cancellation and shutdown too:
        # shield them from it, and bound every hook so none can hold the run open for ever.
        shield = state.is_final() or state.is_cancelling()
        try:
            with anyio.move_on_after(self.runtime.hook_timeout, shield=shield) as scope:
                if inspect.iscoroutinefunction(hook):
                    await hook(self.flow, self.flow_run, state)
                else:
                    result = await anyio.to_thread.run_sync(
                        hook, self.flow, self.flow_run, state, abandon_on_cancel=True
                    )
                    if inspect.isawaitable(result):
                        await result
            if scope.cancelled_caught:
                logger.error("Hook %r did not finish within %g s", name, self.runtime.hook_timeout)
            else:
                logger.info("Hook %r finished running successfully", name)
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
            # Whatever a hook raises (even KeyboardInterrupt) changes neither the state nor
            # the other runs: it is logged and the next hook runs.
            logger.error("An error was encountered while running hook %r", name, exc_info=exc)

    async def _propose_running(self) -> None:
        decision = await self.set_state(Running())
        if decision.status is Status.WAIT:
            self._spawn(self._retry_after, decision.delay)
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

    async def _resolve_upstreams(self) -> None:
        try:
            parameters = await resolve_upstreams(self.parameters, self.record.wait_for)
        except UpstreamFailed as exc:
            await self.ref.tell(Resolved(None, exc))
        else:
            await self.ref.tell(Resolved(parameters))

    async def _upstreams_resolved(self, parameters: Any, error: BaseException | None) -> None:
        if error is not None:
            # Terminal, never a run stuck Pending for ever waiting on an upstream that failed.
            await self._fail_before_running(error, str(error))
            return
        self.parameters = parameters
        self._resolved = True
        await self.begin_run()

    async def _wait_attempt_unwound(self) -> None:
        """After cancelling the attempt, give it a bounded moment to unwind (finally blocks,
        its own subflows). A sync flow's thread is abandoned at once: it cannot be stopped."""
        if not self._attempt_running:
            return
        if self._attempt_done is None:
            self._attempt_done = anyio.Event()
        # Shielded: this also runs while the actor itself is being torn down (on_stop).
        with anyio.move_on_after(self.runtime.cancel_grace, shield=True):
            await self._attempt_done.wait()

    async def _retry_after(self, delay: float) -> None:
        await anyio.sleep(delay)
        await self.ref.tell(Retry())

    async def _acquire_slot(self, slots: Limit) -> None:
        self._run_slot = await slots.acquire()
        try:
            await self.ref.tell(Retry())
        except ActorStopped:
            self._release_slots()

    def _slots_for_subflow(self) -> tuple[Slot | None, Slot | None]:
        """Shares of this run's places for a subflow it starts: its run slot, and the slot of
        its blocked thread (or the one lent to it). The subflow releases them when it ends."""
        run, thread = self._run_slot, self._thread_slot or self._lent_thread
        return (
            run.share() if run is not None else None,
            thread.share() if thread is not None and thread.held else None,
        )

    def _release_slots(self) -> None:
        run, lent, self._run_slot, self._lent_thread = self._run_slot, self._lent_thread, None, None
        if run is not None:
            run.release()
        if lent is not None:
            lent.release()

    def _spawn(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Start run work in a child task, under a scope that cancelling the run cancels."""
        scope = anyio.CancelScope()
        work_scopes = self._work
        if work_scopes is None:
            work_scopes = self._work = set()
        work_scopes.add(scope)

        async def work() -> None:
            try:
                with scope:  # cancelled by _stop_work (cancel, timeout, crash)
                    await fn(*args)
            finally:
                work_scopes.discard(scope)

        self.start_soon(work)

    def _start_attempt(self) -> None:
        """Start the next attempt in a child task, under a scope that `_stop_work` cancels."""
        self._attempt += 1
        scope = self._attempt_scope = anyio.CancelScope()
        self._attempt_running, self._attempt_done = True, None
        self._attempt_stopped = False
        self.start_work(self.call_flow_fn, self._attempt, scope)

    def _stop_work(self, error: BaseException) -> None:
        """Cancel every piece of this run's work; a sync thread sees `error` via check_cancelled."""
        if self._interrupt is not None:
            self._interrupt.set(error)
        self._attempt_stopped = True
        if self._attempt_scope is not None:
            self._attempt_scope.cancel()
        for scope in self._work or ():
            scope.cancel()

    def _abandon(self, error: Exception) -> None:
        """The store could not record this run's state: end the actor, never leave waiters hanging.

        The waiters see Crashed (kept in memory only). The store still shows the last state it
        committed; the run's owner lease lapses and recovery ends it Crashed there too. A run
        that is no longer ours (`OwnershipLost`) ends here with the state the store holds.
        """
        if isinstance(error, OwnershipLost):
            logger.warning(
                "Flow run %r: %s It is stopped here and left as the store has it (%s).",
                self.flow_run.name,
                error,
                error.state.name,
            )
            self.record.error = None  # the run's outcome is the store's, not this attempt's
            self.state = error.state
            self._finish()
            return
        logger.error(
            "Flow run %r: its state could not be recorded (%s); it is left to recovery",
            self.flow_run.name,
            error,
        )
        self.record.error = error
        message = f"The run's state could not be recorded: {error}"
        self.state = Crashed(message=message, data=error)
        self._finish()

    def _finish(self) -> None:
        """The run is final: wake its waiters, free its slot, end the actor."""
        record = self.record
        if record.finished:
            return
        record.finished = True
        record.mark_began()
        self.runtime._suspendable.pop(self.flow_run.id, None)  # what initialize_run set up
        record.state = self.state
        self._stop_work(CancelledRun("the flow run has finished"))
        self._release_slots()
        self.runtime._forget(record)
        if record.items is not None:
            record.items.close()  # a generator run's consumer sees the end of its values
        record.mark_finished()
        self.ref.stop()
        # Break the record <-> actor cycle: a finished run's memory goes back at once rather
        # than at the next full garbage collection (which dominates at thousands of runs).
        record.engine = None
        self._attempt_scope = self._work = None
        self.deadline = None


class AsyncFlowRunEngine(BaseFlowRunEngine):
    """Runs an async flow: each attempt awaits the function in a child task of the actor."""

    def _invoke(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], deadline: anyio.CancelScope
    ) -> Awaitable[Any]:
        if self.record.items is not None:
            return iterate_async(self.flow.fn(*args, **kwargs), self.record.items, deadline)
        result: Awaitable[Any] = self.flow.fn(*args, **kwargs)
        return result


class FlowRunEngine(BaseFlowRunEngine):
    """Runs a sync flow: each attempt calls the function in a worker thread.

    At the deadline (or on cancel) the thread is abandoned: the run is recorded at once, the
    thread runs on until the function returns, and it can stop early via `check_cancelled()`.
    """

    def _invoke(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], deadline: anyio.CancelScope
    ) -> Awaitable[Any]:
        call = functools.partial(self.flow.fn, *args, **kwargs)
        items = self.record.items
        if items is None:
            return self._in_thread(call, 0.0)
        # A generator's thread talks to the event loop at every value: give it a moment to
        # stop (it stops at its next value) rather than leave it calling into a closed loop.
        token = anyio.lowlevel.current_token()
        call = functools.partial(_iterate_call, call, items, deadline, token)
        return self._in_thread(call, self.runtime.cancel_grace)

    async def _in_thread(self, call: Callable[[], Any], grace: float) -> Any:
        """Call in a worker thread, under the slot lent to this run or one of its own; the
        subflows it calls share that slot (a blocked thread never starves its children)."""
        threads: ThreadRunner = self.runtime._threads
        lent = self._lent_thread
        slot = self._thread_slot = lent.share() if lent is not None else await threads.acquire()
        try:
            name = f"flow-run {self.flow_run.name}"
            return await threads.run(call, name=name, grace=grace, slot=slot)
        finally:
            self._thread_slot = None


class _Attempt:
    """What `run_context` enters: the run context, the heartbeat, then the attempt's scope.

    One object rather than three nested context managers: it is entered by every attempt of
    every run, and is alive as long as the attempt.
    """

    __slots__ = ("_engine", "_reset", "_scope")

    def __init__(self, engine: BaseFlowRunEngine, scope: anyio.CancelScope) -> None:
        self._engine = engine
        self._scope = scope
        self._reset: contextvars.Token[RunContext | None] | None = None

    def __enter__(self) -> tuple[RunContext, anyio.CancelScope]:
        engine = self._engine
        ctx = engine._enter_run_context()
        self._reset = _current.set(ctx)
        engine.runtime._heartbeating.add(engine.flow_run.id)
        self._scope.__enter__()
        return ctx, self._scope

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool:
        engine = self._engine
        try:
            return self._scope.__exit__(exc_type, exc, tb)
        finally:
            engine.runtime._heartbeating.discard(engine.flow_run.id)
            assert self._reset is not None
            _current.reset(self._reset)


def _iterate_call(
    make: Callable[[], Any], items: Any, deadline: anyio.CancelScope, token: Any
) -> Any:
    return iterate_sync(make(), items, deadline, token)


def _inherit(own: bool | None, parents: bool | None) -> bool:
    return bool(parents) if own is None else own


def engine_for(flow: Flow[..., Any]) -> type[BaseFlowRunEngine]:
    """The engine class that runs `flow`."""
    return AsyncFlowRunEngine if flow.isasync else FlowRunEngine
