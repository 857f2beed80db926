"""`Runtime`: the embedding entry point. It owns an actor system, a store and the host of runs."""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import anyio
import anyio.lowlevel
import attrs

from actors import ActorSystem

from ._defaults import default_store
from ._hooks import Hooks
from ._host import CANCELLED_BY_ENVIRONMENT, Host
from ._ownership import Ownership, release_ownership, request_cancel, take_ownership
from ._signals import SigtermGuard
from ._slots import Limit
from ._start import start_run, start_runs
from ._threads import ThreadRunner
from .commands import Cancel, Crash
from .context import check_cancelled, current_run_context
from .errors import CrashedRun, FlowRunNotFound, RuntimeClosed, StoreReadOnly
from .flows import Flow
from .handle import FlowRunHandle
from .models import FlowRun
from .parameters import bind_parameters
from .states import State, StateType
from .stores import Store, open_store

__all__ = ["Bound", "Runtime", "current_runtime"]

_current_runtime: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar(
    "flowactor_runtime", default=None
)


def current_runtime() -> Runtime | None:
    """The innermost open `Runtime` of this task (or of the run this code belongs to)."""
    rt = _current_runtime.get()
    if rt is not None and rt.is_open:
        return rt
    ctx = current_run_context()
    if ctx is not None and ctx.runtime.is_open:
        runtime: Runtime = ctx.runtime
        return runtime
    return None


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
    `cancel_grace` (how long a cancelled async run may unwind before it is recorded Cancelled;
    code that swallows cancellation is abandoned after it),
    `lease_seconds` (the runtime's ownership lease, renewed every `heartbeat_seconds` but at
    least three times per lease; when it lapses, or the process is gone, any Runtime on the
    store recovers the runs), `cancel_poll_seconds` (how often the runtime looks for cancel
    requests other processes recorded against its runs), `handle_sigterm` (on SIGTERM, end
    the runs Crashed, or Cancelled where a cancel was requested, then exit as SIGTERM would;
    only where SIGTERM has its default action: see `runtime._signals`). The store defaults to
    `$FLOWACTOR_STORE`, else `$FLOWACTOR_HOME/runs.db`.
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
    cancel_poll_seconds: float = 1.0
    handle_sigterm: bool = True

    _host: Host | None = attrs.field(default=None, init=False)
    _stack: contextlib.AsyncExitStack | None = attrs.field(default=None, init=False)
    _token: contextvars.Token[Runtime | None] | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        if self.concurrency_limit is not None and self.concurrency_limit < 1:
            raise ValueError(f"concurrency_limit must be at least 1, got {self.concurrency_limit}")
        if self.thread_limit < 1:
            raise ValueError(f"thread_limit must be at least 1, got {self.thread_limit}")
        positive = ("persist_timeout", "hook_timeout", "cancel_grace", "lease_seconds")
        for name in (*positive, "cancel_poll_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    @property
    def is_open(self) -> bool:
        """Whether the runtime is entered (and not yet left)."""
        return self._host is not None

    @property
    def host(self) -> Host:
        """The host of this runtime's runs: what the run core sees of it (not for apps)."""
        if self._host is None:
            raise RuntimeClosed("this Runtime is not open (use `async with Runtime() as rt`)")
        return self._host

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Runtime:
        if self._host is not None:
            raise RuntimeError("this Runtime is already open")
        token = anyio.lowlevel.current_token()
        await self.store.open()
        owner_id = None
        if not self.store.read_only:  # a read-only store is only read: no owner, no lease
            owner_id = await self._take_ownership()
        stack = contextlib.AsyncExitStack()
        try:
            if owner_id is not None:
                await self._start_lease_renewal(stack, owner_id)
            # on_stop of a run actor writes Crashed and runs its hooks: give it room for both.
            stop_timeout = self.persist_timeout * 2 + self.hook_timeout
            system = await stack.enter_async_context(
                ActorSystem(name="flowactor", stop_timeout=stop_timeout)
            )
            if self.handle_sigterm and owner_id is not None:
                # Left first: after a SIGTERM the runs it ends still have their actors.
                bound = self.cancel_grace + self.persist_timeout + self.hook_timeout
                await stack.enter_async_context(SigtermGuard(lambda: self._host, bound))
        except BaseException as exc:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
            await self._release(owner_id)
            raise
        self._stack = stack
        self._host = Host(
            runtime=self,
            store=self.store,
            system=system,
            threads=ThreadRunner(self.thread_limit),
            hooks=Hooks(self.hook_timeout, self.thread_limit),
            run_slots=Limit(self.concurrency_limit) if self.concurrency_limit else None,
            owner_id=owner_id,
            loop_token=token,
            persist_timeout=self.persist_timeout,
            hook_timeout=self.hook_timeout,
            cancel_grace=self.cancel_grace,
            heartbeat_seconds=self.heartbeat_seconds,
            mailbox_size=self.mailbox_size,
        )
        self._token = _current_runtime.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        host = self.host
        host.closing = True  # new top-level runs are refused; subflows of live runs start
        if exc is None:
            try:
                await self._wait_all()
            except BaseException as err:  # cancelled while waiting: runs crash, as below
                host.crash_reason = _crash_reason(err)
                await self._close(type(err), err, err.__traceback__)
                raise
        else:
            host.crash_reason = _crash_reason(exc)
        return await self._close(exc_type, exc, tb)

    async def _close(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._stack is not None and self._host is not None
        owner_id = self._host.owner_id
        try:
            # Leaving the actor system stops every actor; with an exception, unfinished run
            # actors are cancelled and their on_stop records them Crashed.
            return await self._stack.__aexit__(exc_type, exc, tb)
        finally:
            self._host = None
            if self._token is not None:
                with contextlib.suppress(ValueError):  # exited from another context
                    _current_runtime.reset(self._token)
                self._token = None
            await self._release(owner_id)

    async def _release(self, owner_id: uuid.UUID | None) -> None:
        # Shielded and bounded: the store's last writes must be flushed even if we are being
        # cancelled, but a broken store must not hang the exit.
        with anyio.move_on_after(self.persist_timeout, shield=True):
            if owner_id is not None:
                await release_ownership(self.store, owner_id)
            await self.store.close()

    async def _take_ownership(self) -> uuid.UUID:
        """Register this runtime's lease and recover the runs of owners that stopped."""
        try:
            return await take_ownership(self.store, self.lease_seconds)
        except BaseException:
            # Shielded and bounded, like _close: the store opened above must be closed again.
            with anyio.move_on_after(self.persist_timeout, shield=True):
                await self.store.close()
            raise

    async def _start_lease_renewal(
        self, stack: contextlib.AsyncExitStack, owner_id: uuid.UUID
    ) -> None:
        """Renew the lease of this runtime (and so of all its runs); sweep for orphans."""
        interval = min(self.heartbeat_seconds, self.lease_seconds / 3)
        ownership = Ownership(
            self.store,
            owner_id,
            self.lease_seconds,
            interval,
            self.persist_timeout,
            on_lost=self._stop_disowned,
            cancel_poll=self.cancel_poll_seconds,
            on_cancel=self._cancel_requested,
        )
        # Entered before the actor system, so left after it: the lease stays renewed while
        # unfinished runs still write their final states.
        await stack.enter_async_context(ownership)

    def _stop_disowned(self, owned: set[uuid.UUID]) -> None:
        """After a lapsed lease: stop the runs that are no longer this runtime's (another
        process recovered them); each ends here with the state the store holds."""
        host = self._host
        if host is None:
            return
        message = "This process's lease had lapsed and another process recovered the run."
        for run_id in [run_id for run_id in host.runs if run_id not in owned]:
            host.tell(run_id, Crash(CrashedRun(message), message))

    def _cancel_requested(self, requests: dict[uuid.UUID, str | None]) -> list[uuid.UUID]:
        """Cancel requests others recorded: the runs driven here are cancelled as by `cancel`;
        the ids of the others (nobody drives them) are returned, to be ended Cancelled."""
        host = self._host
        if host is None:
            return []
        undriven = []
        for run_id, message in requests.items():
            record = host.runs.get(run_id)
            if record is None:
                undriven.append(run_id)
            elif not record.cancel_requested:
                host.tell(run_id, Cancel(message or "Flow run was cancelled."))
        return undriven

    async def shutdown(self, *, cancel: bool = False) -> None:
        """Stop accepting runs and wait for the unfinished ones (cancelling them if `cancel`).

        Subflows of runs still in flight are still accepted until those runs end. The
        runtime's task group is closed when its `async with` block ends.
        """
        host = self.host
        host.closing = True
        if cancel:
            for run_id in list(host.runs):
                host.tell(run_id, Cancel("The runtime was shut down."))
        await self._wait_all()

    async def _wait_all(self) -> None:
        host = self.host
        runs = host.runs
        while runs or host.starting:
            if runs:
                await next(iter(runs.values())).wait_done()
            else:
                await host.wait_starts()  # runs being recorded now are waited for too

    # -- runs ----------------------------------------------------------------------------
    async def submit(self, flow: Flow[..., Any], /, *args: Any, **kwargs: Any) -> FlowRunHandle:
        """Create a flow run (Pending) and start its actor; returns once the run is recorded.

        A checkpoint: cancelled before the run is recorded, no run exists. Arguments that
        cannot bind to the flow's signature raise `ParameterTypeError` here, before any run
        exists. Arguments that are other runs' handles are resolved to their results before the
        run starts (a failed upstream fails this run).
        """
        if not isinstance(flow, Flow):
            raise TypeError(f"submit() takes a Flow, got {type(flow).__name__}")
        return await self.start(flow, bind_parameters(flow.fn, args, kwargs))

    async def submit_many(
        self, flow: Flow[..., Any], arguments: Iterable[Any], /
    ) -> list[FlowRunHandle]:
        """Submit one run of `flow` per item of `arguments`, created in batches of up to
        4,096 runs per store write (one transaction each); their handles, in order.

        An item is a tuple of positional arguments, a mapping of keyword arguments, or else the
        one positional argument. Every item is bound first: one that cannot bind raises
        `ParameterTypeError` before any run exists. Returns once every run is recorded; a
        checkpoint per batch (cancelled, the batches already recorded go on).
        """
        if not isinstance(flow, Flow):
            raise TypeError(f"submit_many() takes a Flow, got {type(flow).__name__}")
        bound = [_bind(flow, item) for item in arguments]
        handles: list[FlowRunHandle] = []
        for start in range(0, len(bound), _BATCH):
            host = await self._admit()
            try:
                handles += await start_runs(host, flow, bound[start : start + _BATCH])
            finally:
                host.start_ended()
        return handles

    async def start(
        self,
        flow: Flow[..., Any],
        parameters: dict[str, Any],
        *,
        wait_for: Iterable[FlowRunHandle] = (),
        flow_run: FlowRun | None = None,
        inline: bool = False,
    ) -> FlowRunHandle:
        """Start a run of `flow` with bound `parameters` (or `flow_run`, already stored).

        What `submit`, direct and subflow calls and resumed runs go through. A checkpoint.
        With `inline`, the caller then drives the run in its own task (a direct call does).
        """
        host = await self._admit()
        try:
            return await start_run(
                host, flow, parameters, wait_for=wait_for, flow_run=flow_run, inline=inline
            )
        finally:
            host.start_ended()

    async def _admit(self) -> Host:
        """The host, if new runs may start now (a checkpoint first); the caller reports the
        start's end (`host.start_ended()`), registered or not."""
        # A checkpoint, as every async call should be: a cancelled caller creates no run, and a
        # loop submitting many runs lets the earlier ones run meanwhile instead of holding all
        # of them in memory at once.
        await anyio.lowlevel.checkpoint()
        # A sync flow's thread runs on after its attempt was stopped: it starts no new runs.
        check_cancelled()
        host = self._host
        if host is None or (host.closing and not self._is_subflow_call(host)):
            raise RuntimeClosed("this Runtime is not open (use `async with Runtime() as rt`)")
        if self.store.read_only:
            raise StoreReadOnly(
                f"This Runtime's store {self.store.url} is read-only: it reads runs, and "
                "cannot start one.",
                self.store.url,
            )
        host.start_admitted()  # leaving the runtime waits for this start (see _wait_all)
        return host

    @staticmethod
    def _is_subflow_call(host: Host) -> bool:
        """Whether the caller is a live run of this runtime (its subflows are still accepted)."""
        ctx = current_run_context()
        return ctx is not None and ctx.flow_run.id in host.runs

    async def cancel(
        self, flow_run_id: uuid.UUID, message: str = "Flow run was cancelled."
    ) -> bool:
        """Cancel a run; True if it ends Cancelled, False if it had already ended otherwise.

        Whoever asks, the process driving the run ends it (Cancelling, its on_cancellation
        hooks, its attempt stopped, then Cancelled). For a run this runtime drives, this waits
        for that end. For a run another live process drives, it records the request
        (Cancelling) and returns True at once: that process learns of it within about its
        `cancel_poll_seconds` and ends the run Cancelled. A run nobody drives (no owner, a
        suspended run, an owner that has stopped) is ended Cancelled here. Cancelling the
        caller leaves the run alone (a request already recorded stands).
        """
        host = self.host
        record = host.runs.get(flow_run_id)
        if record is None:
            return await request_cancel(self.store, flow_run_id, message, host.owner_id)
        host.tell(flow_run_id, Cancel(message))
        await record.wait_done()
        state = record.state
        return state is not None and state.is_cancelled()

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
        record = self.host.runs.get(flow_run_id)
        if record is None:
            raise FlowRunNotFound(flow_run_id)
        return FlowRunHandle(self, record)

    @property
    def active_runs(self) -> int:
        """Runs submitted here that have not reached a final state yet."""
        return len(self._host.runs) if self._host is not None else 0

    def _check_open(self) -> None:
        if self._host is None:
            raise RuntimeClosed("this Runtime is not open (use `async with Runtime() as rt`)")


_BATCH = 4096  # runs per store write in submit_many


class Bound:
    """An item of `submit_many` whose parameters are already bound (as `flow.map` makes)."""

    __slots__ = ("parameters",)

    def __init__(self, parameters: dict[str, Any]) -> None:
        self.parameters = parameters


def _bind(flow: Flow[..., Any], item: Any) -> dict[str, Any]:
    """The parameters of one item of `submit_many`: args tuple, kwargs mapping, or one arg."""
    if isinstance(item, Bound):
        return item.parameters
    if isinstance(item, tuple):
        return bind_parameters(flow.fn, item, {})
    if isinstance(item, Mapping):
        return bind_parameters(flow.fn, (), dict(item))
    return bind_parameters(flow.fn, (item,), {})


def _crash_reason(exc: BaseException) -> str:
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return CANCELLED_BY_ENVIRONMENT
    if isinstance(exc, BaseExceptionGroup) and not exc.split(anyio.get_cancelled_exc_class())[1]:
        return CANCELLED_BY_ENVIRONMENT
    return f"The runtime exited with an error: {type(exc).__name__}: {exc}"
