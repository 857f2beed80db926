"""`Runtime`: the embedding entry point, and `FlowRunHandle`, a submitted run."""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import AsyncGenerator, Iterable
from types import TracebackType
from typing import Any

import anyio
import anyio.lowlevel
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from actors import ActorStopped, ActorSystem

from ._defaults import default_store
from ._ownership import Ownership, release_ownership, take_ownership
from ._slots import Limit
from .commands import Cancel, Crash
from .context import check_cancelled, current_run_context
from .engine import engine_for
from .errors import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    FlowRunNotFound,
    RuntimeClosed,
    StoreReadOnly,
    UnfinishedRun,
)
from .flows import Flow
from .models import FlowRun
from .parameters import bind_parameters
from .states import Cancelled, Cancelling, State, StateType
from .stores import Store, open_store

__all__ = ["FlowRunHandle", "Runtime", "current_runtime"]

_NO_VALUE: Any = object()

_current_runtime: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar(
    "flowactor_runtime", default=None
)


def current_runtime() -> Runtime | None:
    """The innermost open `Runtime` of this task (or of the run this code belongs to)."""
    rt = _current_runtime.get()
    if rt is not None and rt._open:
        return rt
    ctx = current_run_context()
    if ctx is not None and ctx.runtime._open:
        return ctx.runtime
    return None


@attrs.define(eq=False)
class _RunRecord:
    """What the runtime keeps of a run it drives: the actor's ref and how the run ended."""

    flow: Flow[..., Any]
    flow_run: FlowRun
    parameters: dict[str, Any]
    name_error: BaseException | None = None
    _done: anyio.Event | None = None  # made only when someone waits for the end
    began: bool = False  # Running was decided (or the run ended)
    _began_event: anyio.Event | None = None  # made only when someone waits for `began`
    finished: bool = False
    state: State | None = None
    value: Any = _NO_VALUE
    error: BaseException | None = None
    cancel_requested: bool = False
    ref: Any = None
    engine: Any = None  # the run's actor (a BaseFlowRunEngine)
    wait_for: tuple[FlowRunHandle, ...] = ()  # upstream runs that must complete first
    # Generator runs: values go out through `items`; one consumer takes `item_receiver`.
    items: MemoryObjectSendStream[Any] | None = None
    item_receiver: MemoryObjectReceiveStream[Any] | None = None

    def __attrs_post_init__(self) -> None:
        if self.flow.isgenerator:
            self.items, self.item_receiver = anyio.create_memory_object_stream[Any](0)

    def mark_finished(self) -> None:
        """The run is final: wake whoever waits for it."""
        self.finished = True
        if self._done is not None:
            self._done.set()

    async def wait_done(self) -> None:
        """Wait until the run is final (a checkpoint even when it already is)."""
        if self.finished:
            await anyio.lowlevel.checkpoint()
            return
        if self._done is None:
            self._done = anyio.Event()
        await self._done.wait()

    def mark_began(self) -> None:
        self.began = True
        if self._began_event is not None:
            self._began_event.set()

    async def wait_began(self) -> None:
        if not self.began:
            if self._began_event is None:
                self._began_event = anyio.Event()
            await self._began_event.wait()

    def take_item_receiver(self) -> MemoryObjectReceiveStream[Any]:
        receiver = self.item_receiver
        if receiver is None:
            kind = "generator" if self.flow.isgenerator else "non-generator"
            raise RuntimeError(f"the values of this {kind} run are not available to stream")
        self.item_receiver = None
        return receiver


@attrs.define(eq=False)
class FlowRunHandle:
    """A submitted flow run. Waiting on it never owns it: cancelling a wait leaves the run alone."""

    _runtime: Runtime
    _record: _RunRecord

    @property
    def id(self) -> uuid.UUID:
        return self._record.flow_run.id

    @property
    def flow_run(self) -> FlowRun:
        """The run as this runtime last wrote it."""
        return self._record.flow_run

    async def wait(self, timeout: float | None = None) -> State:  # noqa: ASYNC109
        """Wait for the final state; `TimeoutError` after `timeout` seconds (the run goes on)."""
        if timeout is None:
            await self._record.wait_done()
        else:
            with anyio.fail_after(timeout):
                await self._record.wait_done()
        assert self._record.state is not None
        return self._record.state

    async def result(self, *, raise_on_failure: bool = True) -> Any:
        """The run's return value; raises its exception if it failed, crashed or was cancelled.

        For a generator run nobody is streaming, this consumes it and returns its values as a list.
        """
        record = self._record
        if record.item_receiver is not None:
            values = [value async for value in self.stream()]
            return values
        await self.wait()
        return _result_of(record, raise_on_failure=raise_on_failure)

    async def stream(self) -> AsyncGenerator[Any, None]:
        """Iterate a generator run's values as they are yielded (one consumer per run).

        Ends when the generator is exhausted (the run is Completed) and raises the run's error if
        it failed. Stopping early (break, aclose) cancels the run: it ends Cancelled, because the
        generator did not finish its work, and nothing else will ever consume the rest.
        """
        record = self._record
        receiver = record.take_item_receiver()
        try:
            async for value in receiver:
                yield value
            state = await self.wait()
            if not state.is_completed():
                _result_of(record)  # raises the run's error
        finally:
            # Only synchronous cleanup here: this may run from the garbage collector.
            receiver.close()
            if not record.finished:
                self._runtime._tell_cancel(
                    record, "The consumer stopped iterating before the generator was exhausted."
                )

    async def cancel(self) -> bool:
        """Cancel the run; True if it ended Cancelled, False if it had already ended otherwise."""
        return await self._runtime.cancel(self.id)

    def __repr__(self) -> str:
        run = self._record.flow_run
        return f"FlowRunHandle(id={run.id}, name={run.name!r}, state={run.state!r})"


def _result_of(record: _RunRecord, *, raise_on_failure: bool = True) -> Any:
    state = record.state
    if state is None or not state.is_final():
        raise UnfinishedRun(f"Run is in {state.type.value if state else 'no'} state")
    if state.is_completed():
        if record.value is not _NO_VALUE and not isinstance(record.value, State):
            return record.value
        return state.data
    error: BaseException
    if isinstance(state.data, BaseException):
        error = state.data
    elif isinstance(record.error, BaseException):
        error = record.error
    elif state.is_cancelled():
        error = CancelledRun(state.message or "Flow run was cancelled.")
    elif state.is_crashed():
        error = CrashedRun(state.message or "Flow run crashed.")
    else:
        error = FailedRun(state.message or "Flow run failed.")
    if not raise_on_failure:
        return error
    raise error


@attrs.define(eq=False)
class Runtime:
    """Runs flows as actors, durably recorded in `store`.

    `async with Runtime(store="memory://") as rt:` submits runs with `rt.submit(flow, ...)`.
    Leaving the block waits for unfinished runs; `await rt.shutdown(cancel=True)` cancels them
    first. If the block is cancelled by the application (or raises), unfinished runs end
    Crashed with that reason.

    Settings: `concurrency_limit` (runs executing at once; the rest wait in Pending; a subflow
    runs under its parent's place), `thread_limit` (threads for sync flows, abandoned ones
    included, until they return; a sync subflow called while a sync ancestor's thread waits for
    it runs under that thread's place), `persist_timeout`
    (how long the store may commit nothing while a state write waits, shielded terminal
    writes included, before the write gives up with `StoreStalled`), `hook_timeout`,
    `cancel_grace` (how long a cancelled async run may unwind before it is recorded Cancelled),
    `lease_seconds` (the runtime's ownership lease, renewed every `heartbeat_seconds` but at
    least three times per lease; when it lapses, or the process is gone, any Runtime on the
    store recovers the runs). The store defaults to `$FLOWACTOR_STORE`, else
    `$FLOWACTOR_HOME/runs.db`.
    """

    store: Store = attrs.field(default=attrs.Factory(default_store), converter=open_store)
    concurrency_limit: int | None = None
    thread_limit: int = 40
    persist_timeout: float = 10.0
    hook_timeout: float = 30.0
    cancel_grace: float = 5.0
    heartbeat_seconds: float = 10.0
    mailbox_size: int = 16
    lease_seconds: float = 30.0

    _open: bool = attrs.field(default=False, init=False)
    _accepting: bool = attrs.field(default=False, init=False)
    _runs: dict[uuid.UUID, _RunRecord] = attrs.field(factory=dict, init=False)
    _system: ActorSystem | None = attrs.field(default=None, init=False)
    _stack: contextlib.AsyncExitStack | None = attrs.field(default=None, init=False)
    _token: contextvars.Token[Runtime | None] | None = attrs.field(default=None, init=False)
    _run_slots: Limit | None = attrs.field(default=None, init=False)
    _threads: Any = attrs.field(default=None, init=False)
    # Runs whose lease the runtime's one shared heartbeat keeps alive (send_heartbeats_*).
    _heartbeating: set[uuid.UUID] = attrs.field(factory=set, init=False)
    # Inputs given to resumed runs, by (run id, pause key): a pause key that already fired
    # returns its input again (a suspended run re-runs its function from the start).
    _run_inputs: dict[tuple[uuid.UUID, str], Any] = attrs.field(factory=dict, init=False)
    # Engines that suspend_flow_run(flow_run_id=...) can reach (setup_flow_run_suspension_request).
    _suspendable: dict[uuid.UUID, Any] = attrs.field(factory=dict, init=False)
    _crash_reason: str = attrs.field(
        default="Execution was cancelled by the runtime environment.", init=False
    )
    _owner_id: uuid.UUID | None = attrs.field(default=None, init=False)  # this runtime's lease
    _loop_token: Any = attrs.field(default=None, init=False)  # the event loop it was entered on

    def __attrs_post_init__(self) -> None:
        if self.concurrency_limit is not None and self.concurrency_limit < 1:
            raise ValueError(f"concurrency_limit must be at least 1, got {self.concurrency_limit}")
        for name in ("persist_timeout", "hook_timeout", "cancel_grace", "lease_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Runtime:
        from ._threads import ThreadRunner

        if self._open:
            raise RuntimeError("this Runtime is already open")
        self._loop_token = anyio.lowlevel.current_token()
        await self.store.open()
        if not self.store.read_only:  # a read-only store is only read: no owner, no lease
            await self._take_ownership()
        self._threads = ThreadRunner(self.thread_limit)
        if self.concurrency_limit is not None:
            self._run_slots = Limit(self.concurrency_limit)
        stack = contextlib.AsyncExitStack()
        if self._owner_id is not None:
            await self._start_lease_renewal(stack)
        # on_stop of a run actor writes Crashed and runs its hooks: give it room for both.
        stop_timeout = self.persist_timeout * 2 + self.hook_timeout
        self._system = await stack.enter_async_context(
            ActorSystem(name="flowactor", stop_timeout=stop_timeout)
        )
        self._stack = stack
        self._open = self._accepting = True
        self._token = _current_runtime.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._accepting = False
        if exc is None:
            try:
                await self._wait_all()
            except BaseException as err:  # cancelled while waiting: runs crash, as below
                self._crash_reason = _crash_reason(err)
                await self._close(type(err), err, err.__traceback__)
                raise
        else:
            self._crash_reason = _crash_reason(exc)
        return await self._close(exc_type, exc, tb)

    async def _close(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._stack is not None
        try:
            # Leaving the actor system stops every actor; with an exception, unfinished run
            # actors are cancelled and their on_stop records them Crashed.
            return await self._stack.__aexit__(exc_type, exc, tb)
        finally:
            self._open = False
            if self._token is not None:
                with contextlib.suppress(ValueError):  # exited from another context
                    _current_runtime.reset(self._token)
                self._token = None
            # Shielded and bounded: the store's last writes must be flushed even if we are
            # being cancelled, but a broken store must not hang the exit.
            with anyio.move_on_after(self.persist_timeout, shield=True):
                await self._release_ownership()
                await self.store.close()

    async def _take_ownership(self) -> None:
        """Register this runtime's lease and recover the runs of owners that stopped."""
        try:
            self._owner_id = await take_ownership(self.store, self.lease_seconds)
        except BaseException:
            # Shielded and bounded, like _close: the store opened above must be closed again.
            with anyio.move_on_after(self.persist_timeout, shield=True):
                await self.store.close()
            raise

    async def _start_lease_renewal(self, stack: contextlib.AsyncExitStack) -> None:
        """Renew the lease of this runtime (and so of all its runs); sweep for orphans."""
        assert self._owner_id is not None
        interval = min(self.heartbeat_seconds, self.lease_seconds / 3)
        ownership = Ownership(
            self.store,
            self._owner_id,
            self.lease_seconds,
            interval,
            self.persist_timeout,
            on_lost=self._stop_disowned,
        )
        # Entered before the actor system, so left after it: the lease stays renewed while
        # unfinished runs still write their final states.
        await stack.enter_async_context(ownership)

    def _stop_disowned(self, owned: set[uuid.UUID]) -> None:
        """After a lapsed lease: stop the runs that are no longer this runtime's (another
        process recovered them); each ends here with the state the store holds."""
        message = "This process's lease had lapsed and another process recovered the run."
        for run_id in [run_id for run_id in self._runs if run_id not in owned]:
            self._crash_run(run_id, CrashedRun(message), message)

    async def _release_ownership(self) -> None:
        owner_id, self._owner_id = self._owner_id, None
        if owner_id is not None:
            await release_ownership(self.store, owner_id)

    async def shutdown(self, *, cancel: bool = False) -> None:
        """Stop accepting runs and wait for the unfinished ones (cancelling them if `cancel`).

        The runtime's task group is closed when its `async with` block ends.
        """
        self._accepting = False
        if cancel:
            for record in list(self._runs.values()):
                self._tell_cancel(record, "The runtime was shut down.")
        await self._wait_all()

    async def _wait_all(self) -> None:
        while self._runs:
            record = next(iter(self._runs.values()))
            await record.wait_done()

    def _forget(self, record: _RunRecord) -> None:
        self._runs.pop(record.flow_run.id, None)

    # -- runs ----------------------------------------------------------------------------
    async def submit(self, flow: Flow[..., Any], /, *args: Any, **kwargs: Any) -> FlowRunHandle:
        """Create a flow run (Pending) and start its actor; returns once the run is recorded.

        Arguments that cannot bind to the flow's signature raise `ParameterTypeError` here,
        before any run exists. Arguments that are other runs' handles are resolved to their
        results before the run starts (a failed upstream fails this run).
        """
        if not isinstance(flow, Flow):
            raise TypeError(f"submit() takes a Flow, got {type(flow).__name__}")
        return await self._submit(flow, bind_parameters(flow.fn, args, kwargs))

    async def _submit(
        self,
        flow: Flow[..., Any],
        parameters: dict[str, Any],
        *,
        wait_for: Iterable[FlowRunHandle] = (),
        flow_run: FlowRun | None = None,
    ) -> FlowRunHandle:
        """Start a run of `flow`: a new one, or `flow_run` when it already exists in the store."""
        # A checkpoint, as every async call should be: a cancelled caller creates no run, and a
        # loop submitting many runs lets the earlier ones run meanwhile instead of holding all
        # of them in memory at once.
        await anyio.lowlevel.checkpoint()
        # A sync flow's thread runs on after its attempt was stopped: it starts no new runs.
        check_cancelled()
        if not self._accepting:
            raise RuntimeClosed("this Runtime is not open (use `async with Runtime() as rt`)")
        if self.store.read_only:
            raise StoreReadOnly(
                f"This Runtime's store {self.store.url} is read-only: it reads runs, and "
                "cannot start one.",
                self.store.url,
            )
        engine_class = engine_for(flow)
        name_error = None
        if flow_run is None:
            flow_run, name_error = await engine_class.create_flow_run(self, flow, parameters)
        else:  # a run that exists already: this runtime drives it from now on
            assert self._owner_id is not None
            flow_run = await self.store.claim_flow_run(flow_run.id, self._owner_id)
        record = _RunRecord(flow, flow_run, parameters, name_error, wait_for=tuple(wait_for))
        assert self._system is not None
        self._runs[flow_run.id] = record
        engine = record.engine = engine_class(self, record)
        record.ref = self._system.spawn(
            lambda: engine, name=f"flow-run-{flow_run.id}", mailbox_size=self.mailbox_size
        )
        engine.start()
        return FlowRunHandle(self, record)

    async def cancel(
        self, flow_run_id: uuid.UUID, message: str = "Flow run was cancelled."
    ) -> bool:
        """Cancel a run; True if it ended Cancelled, False if it had already ended otherwise.

        A run this runtime does not drive (another process's, say) is moved to Cancelling then
        Cancelled in the store directly.
        """
        record = self._runs.get(flow_run_id)
        if record is None:
            run = await self.store.read_flow_run(flow_run_id)
            if run.state is None or run.state.is_final():
                return False
            first = await self.store.set_state(flow_run_id, Cancelling(message=message))
            if not first.state.is_cancelling():
                return False
            second = await self.store.set_state(flow_run_id, Cancelled(message=message))
            return second.state.is_cancelled()
        self._tell_cancel(record, message)
        await record.wait_done()
        return record.state is not None and record.state.is_cancelled()

    def _tell_cancel(self, record: _RunRecord, message: str) -> None:
        with contextlib.suppress(ActorStopped):  # finished meanwhile: nothing to cancel
            record.ref.tell_system(Cancel(message))

    def _crash_run(self, flow_run_id: uuid.UUID, error: BaseException, message: str) -> None:
        """Ask a run to end Crashed (its caller was cancelled); never blocks."""
        record = self._runs.get(flow_run_id)
        if record is not None:
            with contextlib.suppress(ActorStopped):
                record.ref.tell_system(Crash(error, message))

    async def read_flow_run(self, flow_run_id: uuid.UUID) -> FlowRun:
        """The run as stored; `FlowRunNotFound` if there is none."""
        self._check_open()
        return await self.store.read_flow_run(flow_run_id)

    async def read_states(self, flow_run_id: uuid.UUID) -> list[State]:
        """The run's state history, oldest first."""
        self._check_open()
        return await self.store.read_states(flow_run_id)

    async def list_flow_runs(
        self,
        *,
        state: StateType | Iterable[StateType] | None = None,
        flow_name: str | None = None,
        limit: int | None = None,
    ) -> list[FlowRun]:
        """Runs in the store filtered by state type(s) and flow name, oldest first."""
        self._check_open()
        return await self.store.list_flow_runs(state=state, flow_name=flow_name, limit=limit)

    def handle(self, flow_run_id: uuid.UUID) -> FlowRunHandle:
        """The handle of a run this runtime is driving; `FlowRunNotFound` otherwise."""
        record = self._runs.get(flow_run_id)
        if record is None:
            raise FlowRunNotFound(flow_run_id)
        return FlowRunHandle(self, record)

    @property
    def active_runs(self) -> int:
        """Runs submitted here that have not reached a final state yet."""
        return len(self._runs)

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeClosed("this Runtime is not open (use `async with Runtime() as rt`)")


def _crash_reason(exc: BaseException) -> str:
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return "Execution was cancelled by the runtime environment."
    if isinstance(exc, BaseExceptionGroup) and not exc.split(anyio.get_cancelled_exc_class())[1]:
        return "Execution was cancelled by the runtime environment."
    return f"The runtime exited with an error: {type(exc).__name__}: {exc}"
