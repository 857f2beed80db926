"""Pausing a run from inside it, suspending it, and resuming it from outside.

`await pause_flow_run(...)` keeps the run's actor and its attempt alive while it waits;
`await suspend_flow_run(...)` ends the actor (nothing of the run stays in memory), and resuming
loads the flow again from its entrypoint and runs it as a new attempt, where the same
`suspend_flow_run` call (same key) returns the input at once.

Sync flows call these through their runtime's loop, from the flow's thread:
`anyio.from_thread.run(pause_flow_run, ..., token=get_run_context().token)`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio
import anyio.lowlevel

from ._generators import paused_deadline
from .commands import Pause, PauseExpired, Resume
from .context import check_cancelled, get_run_context
from .errors import FlowPauseTimeout, FlowRunNotFound, NotPausedError, RuntimeClosed
from .handle import record_of
from .loading import load_flow_from_entrypoint
from .parameters import validate_value
from .runtime import Runtime, current_runtime
from .states import State

if TYPE_CHECKING:
    from ._attempt import Attempt
    from .engine import BaseFlowRunEngine

__all__ = ["pause_flow_run", "resume_flow_run", "suspend_flow_run"]

T = TypeVar("T")


@overload
async def pause_flow_run(
    wait_for_input: None = None, timeout: float = 3600, key: str | None = None
) -> None: ...


@overload
async def pause_flow_run(
    wait_for_input: type[T], timeout: float = 3600, key: str | None = None
) -> T: ...


async def pause_flow_run(
    wait_for_input: type[Any] | None = None, timeout: float = 3600, key: str | None = None
) -> Any:
    """Pause the current run until `resume_flow_run` (from outside) or `timeout` seconds.

    Returns the resume input validated against `wait_for_input` as flow parameters are
    (None without it). A pause that times out ends the run Failed and raises
    `FlowPauseTimeout` here. The run's own timeout does not run while it is paused. A key
    fires once: pausing again with a key that was already resumed returns at once.
    """
    if timeout <= 0:
        raise ValueError("the pause timeout must be positive")
    engine, attempt, key = _current(key)
    state, resumed = await engine.ref.ask(Pause(key, timeout))
    if state.is_running():
        return _validated(engine, key, wait_for_input)
    if not state.is_paused():
        raise RuntimeError(f"Flow run cannot be paused: it is {state.type.value}")
    assert resumed is not None
    with anyio.move_on_after(timeout) as waiting, paused_deadline(attempt.scope):
        await resumed.wait()
    if waiting.cancelled_caught:
        await engine.ref.ask(PauseExpired(key))
        raise FlowPauseTimeout("The flow was paused and never resumed.")
    return _validated(engine, key, wait_for_input)


async def suspend_flow_run(
    wait_for_input: type[Any] | None = None,
    flow_run_id: uuid.UUID | None = None,
    timeout: float | None = None,
    key: str | None = None,
) -> Any:
    """Suspend a run: its actor ends and frees its memory until `resume_flow_run`.

    For the current run (no `flow_run_id`) this does not return until the run is resumed, as
    a new attempt that calls the function again; there, the same call returns the input (in
    a sync flow's thread it raises `CancelledRun`, so that the thread ends). With
    `flow_run_id`, another run of this runtime is suspended (its attempt is stopped).
    A subflow cannot be suspended (RuntimeError): its parent is waiting for its result.
    """
    if flow_run_id is not None:
        record = _runtime().host.runs.get(flow_run_id)
        other = record.actor if record is not None else None
        if other is None:
            raise FlowRunNotFound(flow_run_id)
        _refuse_subflow(other)
        await other.ref.ask(Pause(key or "suspend", timeout, reschedule=True))
        return None
    engine, _, key = _current(key)
    _refuse_subflow(engine)
    state, _ = await engine.ref.ask(Pause(key, timeout, reschedule=True))
    if state.is_running():
        return _validated(engine, key, wait_for_input)
    if not state.is_paused():
        raise RuntimeError(f"Flow run cannot be suspended: it is {state.type.value}")
    # The actor has stopped this attempt: an async flow is cancelled here. Code called from a
    # sync flow's thread is not in the attempt's scope: raise, so that the thread unwinds.
    await anyio.lowlevel.checkpoint()
    check_cancelled()
    await anyio.sleep_forever()


async def resume_flow_run(flow_run_id: uuid.UUID, run_input: Any = None) -> State:
    """Resume a paused or suspended run of the ambient runtime; returns its new state.

    `NotPausedError` if the run is not paused, `FlowPauseTimeout` if its pause has expired.
    A suspended run's flow is loaded again from its recorded entrypoint.
    """
    rt = _runtime()
    record = rt.host.runs.get(flow_run_id)
    actor = record.actor if record is not None else None
    if actor is not None:
        state: State = await actor.ref.ask(Resume(run_input))
    else:
        state = await _resume_suspended(rt, flow_run_id, run_input)
    if state.is_failed():
        # A paused run fails on resume only when its pause had expired (the policy's rule).
        raise FlowPauseTimeout(state.message or "The flow was paused and never resumed.")
    if not state.is_running() and not state.is_final():
        raise NotPausedError(f"flow run {flow_run_id} is {state.type.value}, not paused")
    return state


async def _resume_suspended(rt: Runtime, flow_run_id: uuid.UUID, run_input: Any) -> State:
    run = await rt.store.read_flow_run(flow_run_id)
    state = run.state
    if state is None or not state.is_paused():
        kind = state.type.value if state is not None else "not started"
        raise NotPausedError(f"flow run {flow_run_id} is {kind}, not paused")
    if not run.entrypoint:
        raise RuntimeError(f"flow run {flow_run_id} has no entrypoint to resume it from")
    flow = load_flow_from_entrypoint(run.entrypoint)
    if state.details.pause_key is not None:
        rt.host.run_inputs[(flow_run_id, state.details.pause_key)] = run_input
    handle = await rt.start(flow, dict(run.parameters), flow_run=run)
    await record_of(handle).wait_began()  # its first command proposes Running: a new attempt
    current = handle.flow_run.state
    assert current is not None
    return current


def _runtime() -> Runtime:
    rt = current_runtime()
    if rt is None:
        raise RuntimeClosed("resume_flow_run needs an open Runtime (async with Runtime() ...)")
    return rt


def _current(key: str | None) -> tuple[BaseFlowRunEngine, Attempt, str]:
    """The run and attempt this code belongs to, and the pause key (the next default one)."""
    ctx = get_run_context()
    engine: BaseFlowRunEngine = ctx.engine
    attempt: Attempt = ctx.attempt
    return engine, attempt, key if key is not None else attempt.next_pause_key()


def _refuse_subflow(engine: BaseFlowRunEngine) -> None:
    if engine.flow_run.parent_flow_run_id is not None:
        raise RuntimeError("Cannot suspend subflows.")


def _validated(engine: BaseFlowRunEngine, key: str, wait_for_input: type[Any] | None) -> Any:
    value = engine.host.run_inputs.get((engine.flow_run.id, key))
    if wait_for_input is None:
        return None
    try:
        return validate_value(value, wait_for_input)
    except Exception as exc:
        name = getattr(wait_for_input, "__name__", repr(wait_for_input))
        raise TypeError(f"the resume input {value!r} is not a valid {name}: {exc}") from exc
