"""The seed engine's public surface (`prefect.flow_engine`), by its names.

The engine classes are the flow-run actors themselves; the `run_flow*` functions submit a run
to the ambient `Runtime` (or a temporary one on the default store) and wait for it.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.from_thread
import anyio.to_thread

from ._defaults import default_store
from ._subprocess_runs import cancel_flow_run_process, run_flow_in_subprocess
from .commands import Cancel, Crash
from .context import check_cancelled, current_run_context
from .engine import AsyncFlowRunEngine, BaseFlowRunEngine, FlowRunEngine
from .errors import FlowRunTimeoutError, RuntimeClosed, UnfinishedRun
from .handle import FlowRunHandle, record_of, result_of
from .loading import load_flow_from_entrypoint
from .parameters import bind_parameters
from .runtime import Runtime, current_runtime

if TYPE_CHECKING:
    from ._attempt import Attempt
    from .flows import Flow
    from .models import FlowRun
    from .stores import Store

__all__ = [
    "AsyncFlowRunEngine",
    "BaseFlowRunEngine",
    "FlowRunEngine",
    "FlowRunTimeoutError",
    "cancel_flow_run_process",
    "load_flow",
    "load_flow_and_flow_run",
    "load_flow_run",
    "run_flow",
    "run_flow_async",
    "run_flow_in_subprocess",
    "run_flow_sync",
    "run_generator_flow_async",
    "run_generator_flow_sync",
    "send_heartbeats_async",
    "send_heartbeats_sync",
]

ReturnType = Literal["result", "state"]


# -- loading ------------------------------------------------------------------------------
def _store_for(store: Store | None) -> Store:
    if store is not None:
        return store
    rt = current_runtime()
    return rt.store if rt is not None else default_store()


async def load_flow_run(flow_run_id: Any, *, store: Store | None = None) -> FlowRun:
    """The stored run (from `store`, the ambient runtime's, or the default); FlowRunNotFound."""
    return await _store_for(store).read_flow_run(flow_run_id)


def load_flow(flow_run: FlowRun) -> Flow[..., Any]:
    """The flow of a run, imported again from its recorded entrypoint (`module:qualname`)."""
    if not flow_run.entrypoint:
        raise ValueError(f"flow run {flow_run.id} has no recorded entrypoint to load it from")
    return load_flow_from_entrypoint(flow_run.entrypoint)


async def load_flow_and_flow_run(
    flow_run_id: Any, *, store: Store | None = None
) -> tuple[FlowRun, Flow[..., Any]]:
    """`(flow_run, flow)` for a stored run."""
    flow_run = await load_flow_run(flow_run_id, store=store)
    return flow_run, load_flow(flow_run)


# -- heartbeats ----------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def send_heartbeats_async(engine: BaseFlowRunEngine) -> AsyncIterator[None]:
    """Keep the run's lease alive inside the block: the runtime's one lease already does.

    A Runtime renews one lease for all the runs it drives (one write per interval, whatever
    the number of runs), so there is no task, thread or write per run, and leaving waits for
    nothing (Prefect joins a heartbeat thread here).
    """
    with send_heartbeats_sync(engine):
        yield


@contextlib.contextmanager
def send_heartbeats_sync(engine: BaseFlowRunEngine) -> Iterator[None]:
    """The same as `send_heartbeats_async`, for sync code."""
    if not engine.host.runtime.is_open:
        raise RuntimeClosed("the run's Runtime is closed: nothing renews its lease")
    yield


# -- running -------------------------------------------------------------------------------
async def run_flow_async(
    flow: Flow[..., Any],
    flow_run: FlowRun | None = None,
    parameters: dict[str, Any] | None = None,
    wait_for: Iterable[FlowRunHandle] | None = None,
    return_type: ReturnType = "result",
) -> Any:
    """Run `flow` (or the existing `flow_run`) and return its result, or its final State."""
    rt = current_runtime()
    if rt is not None:
        return await _run_owned(rt, flow, flow_run, parameters, wait_for, return_type)
    async with Runtime(store=default_store()) as temporary:
        return await _run_owned(temporary, flow, flow_run, parameters, wait_for, return_type)


def run_flow_sync(
    flow: Flow[..., Any],
    flow_run: FlowRun | None = None,
    parameters: dict[str, Any] | None = None,
    wait_for: Iterable[FlowRunHandle] | None = None,
    return_type: ReturnType = "result",
) -> Any:
    """Run `flow` from sync code and return its result (or final State).

    From plain sync code it runs on a fresh event loop; from inside a sync flow's thread, on
    that flow's runtime. On an event loop's own thread it refuses (it would block the loop).
    """
    args = (flow, flow_run, parameters, wait_for, return_type)
    ctx = current_run_context()
    if ctx is not None and ctx.token is not None and threading.get_ident() != ctx.loop_thread:
        return anyio.from_thread.run(run_flow_async, *args, token=ctx.token)
    if _loop_running():
        raise RuntimeError(
            f"the sync flow {flow.name!r} was called on a running event loop, where it would "
            "block the loop: use `await runtime.submit(flow, ...)` (or make the flow async)"
        )
    return anyio.run(run_flow_async, *args)


async def run_generator_flow_async(
    flow: Flow[..., Any],
    flow_run: FlowRun | None = None,
    parameters: dict[str, Any] | None = None,
    wait_for: Iterable[FlowRunHandle] | None = None,
    return_type: ReturnType = "result",
) -> AsyncGenerator[Any, None]:
    """Iterate a generator flow's values as they come (on the ambient runtime).

    Outside a Runtime the run happens on the process's background runtime (its own thread):
    a task group must not be held open across this generator's yields.
    """
    if return_type != "result":
        raise ValueError("The return_type for a generator flow must be 'result'")
    rt = current_runtime()
    if rt is not None:
        handle = await _start(rt, flow, flow_run, parameters, wait_for)
        stream = handle.stream()
        try:
            async for value in stream:
                yield value
        finally:
            await stream.aclose()
        return
    values = _background_values(flow, flow_run, parameters, wait_for)
    try:
        while True:
            done, value = await anyio.to_thread.run_sync(_next_or_done, values)
            if done:
                return
            yield value
    finally:
        values.close()


def run_generator_flow_sync(
    flow: Flow[..., Any],
    flow_run: FlowRun | None = None,
    parameters: dict[str, Any] | None = None,
    wait_for: Iterable[FlowRunHandle] | None = None,
    return_type: ReturnType = "result",
) -> Generator[Any, None, Any]:
    """Iterate a sync generator flow's values from sync code (on the background runtime).

    The flow's `return` value arrives as the `StopIteration.value` at the end, as with any
    generator.
    """
    if return_type != "result":
        raise ValueError("The return_type for a generator flow must be 'result'")
    return (yield from _background_values(flow, flow_run, parameters, wait_for))


def run_flow(
    flow: Flow[..., Any],
    flow_run: FlowRun | None = None,
    parameters: dict[str, Any] | None = None,
    wait_for: Iterable[FlowRunHandle] | None = None,
    return_type: ReturnType = "result",
) -> Any:
    """Dispatch as Prefect does: async generator flows give an async generator, sync ones a
    generator, async flows a coroutine to await, and sync flows run now."""
    args = (flow, flow_run, parameters, wait_for, return_type)
    if flow.isgenerator and flow.isasync:
        return run_generator_flow_async(*args)
    if flow.isgenerator:
        return run_generator_flow_sync(*args)
    if flow.isasync:
        return run_flow_async(*args)
    return run_flow_sync(*args)


# -- helpers -------------------------------------------------------------------------------
async def _start(
    rt: Runtime,
    flow: Flow[..., Any],
    flow_run: FlowRun | None,
    parameters: dict[str, Any] | None,
    wait_for: Iterable[FlowRunHandle] | None,
    *,
    inline: bool = False,
) -> FlowRunHandle:
    if flow_run is not None:
        await _refuse_paused(rt, flow_run)
    if parameters is None:
        parameters = dict(flow_run.parameters) if flow_run is not None else {}
    if flow_run is None:
        parameters = bind_parameters(flow.fn, (), parameters)  # applies the defaults
    # The calling attempt is over (timed out, cancelled, suspended) but a sync flow's thread
    # runs on: the subflows it calls from now on must not start (nor be reused).
    check_cancelled()
    parent = current_run_context()
    attempt: Attempt | None = None
    if parent is not None and parent.runtime is rt:
        attempt = parent.attempt  # this call is a subflow of the current run's attempt
    if attempt is not None and flow_run is None:
        reused = attempt.reuse_subflow(flow)
        if reused is not None:
            return FlowRunHandle(rt, reused)
    handle = await rt.start(
        flow, parameters, wait_for=wait_for or (), flow_run=flow_run, inline=inline
    )
    if attempt is not None:
        attempt.remember_subflow(record_of(handle))
    return handle


async def _refuse_paused(rt: Runtime, flow_run: FlowRun) -> None:
    """A paused or suspended run goes on only through `resume_flow_run`, never by running it."""
    state = (await rt.store.read_flow_run(flow_run.id)).state
    if state is not None and state.is_paused():
        raise UnfinishedRun(
            f"Run is in {state.type.value} state ({state.name}): resume it with resume_flow_run"
        )


async def _run_owned(
    rt: Runtime,
    flow: Flow[..., Any],
    flow_run: FlowRun | None,
    parameters: dict[str, Any] | None,
    wait_for: Iterable[FlowRunHandle] | None,
    return_type: ReturnType,
) -> Any:
    """Start and wait. The caller owns this run: if the caller is cancelled, the run crashes.

    A top-level call drives the run in its own task (it would only wait otherwise): no task
    is made for it. A subflow gets a task of its own: its parent's cancel scopes must not
    reach it (a suspended parent's subflow runs on to its end).
    """
    parent = current_run_context()
    inline = parent is None or parent.runtime is not rt
    handle = await _start(rt, flow, flow_run, parameters, wait_for, inline=inline)
    try:
        record = record_of(handle)
        actor = record.actor if inline else None
        if actor is not None:
            await actor.run_inline()
        # Ended already (driven here): no second scheduling point, the call had one.
        state = record.state if record.finished else await handle.wait()
        assert state is not None
    except BaseException as exc:
        message = "Execution was cancelled by the runtime environment."
        if not isinstance(exc, anyio.get_cancelled_exc_class()):
            message = f"The caller of the flow was interrupted: {type(exc).__name__}"
        parent = current_run_context()
        parent_engine = parent.engine if parent is not None else None
        if parent_engine is not None and parent_engine.state.details.pause_reschedule:
            raise  # the parent was suspended: a subflow it had started finishes on its own
        if parent_engine is not None and parent_engine.record.cancel_requested:
            # The parent run is being cancelled: its subflow is cancelled too, not crashed.
            rt.host.tell(handle.id, Cancel("The parent flow run was cancelled."))
        else:
            rt.host.tell(handle.id, Crash(exc, message))
        # The run's actor writes its final state in a task the runtime owns; here we only
        # give it a bounded, shielded moment so the caller usually sees it done. (A native
        # asyncio Task.cancel() may cut this wait short; the write happens regardless.)
        with anyio.move_on_after(rt.persist_timeout, shield=True):
            await handle.wait()
        raise
    if return_type == "state":
        return state
    return result_of(record_of(handle))


def _loop_running() -> bool:
    import sniffio

    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True


_DONE = object()


def _next_or_done(values: Generator[Any, None, None]) -> tuple[bool, Any]:
    value = next(values, _DONE)
    return value is _DONE, value


# Background iterations not finished yet. Closed at exit, while their portal threads still
# run: closed later by the garbage collector, they would wait on a frozen thread for ever.
_unfinished: weakref.WeakSet[Generator[Any, None, Any]] = weakref.WeakSet()


@atexit.register
def _close_unfinished() -> None:
    for values in list(_unfinished):
        with contextlib.suppress(Exception):  # e.g. one being iterated by another thread
            values.close()


def _background_values(
    flow: Flow[..., Any],
    flow_run: FlowRun | None,
    parameters: dict[str, Any] | None,
    wait_for: Iterable[FlowRunHandle] | None,
) -> Generator[Any, None, Any]:
    """A generator run on a temporary runtime in its own thread, its values pulled over.

    Returns what the generator returned (a sync generator's `return` value, else None).
    """
    values = _portal_values(flow, flow_run, parameters, wait_for)
    _unfinished.add(values)
    return (yield from values)


def _portal_values(
    flow: Flow[..., Any],
    flow_run: FlowRun | None,
    parameters: dict[str, Any] | None,
    wait_for: Iterable[FlowRunHandle] | None,
) -> Generator[Any, None, Any]:
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        # The portal enters and leaves the runtime in one task of its own, as anyio requires.
        portal.wrap_async_context_manager(Runtime(store=default_store())) as rt,
    ):
        handle = portal.call(_start, rt, flow, flow_run, parameters, wait_for)
        values = handle.stream()
        try:
            while True:
                try:
                    value = portal.call(values.__anext__)
                except StopAsyncIteration:
                    break
                yield value
        finally:
            portal.call(values.aclose)
        return result_of(record_of(handle))  # the stream ended: the run has Completed
