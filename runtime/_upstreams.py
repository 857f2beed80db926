"""Upstream runs: handles passed as parameters or in `wait_for`, resolved before a run starts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from .errors import CancelledRun, CrashedRun, FailedRun
from .handle import FlowRunHandle
from .states import State

__all__ = ["AllowFailure", "UpstreamFailed", "allow_failure", "has_upstreams", "resolve_upstreams"]


class UpstreamFailed(RuntimeError):
    """An upstream run did not complete, so this run cannot start."""


@attrs.frozen
class AllowFailure:
    """An upstream whose failure does not stop the downstream run (made by `allow_failure`)."""

    # Private, so a store encodes the wrapper as `{}` (as it does a handle), whatever it holds.
    _upstream: FlowRunHandle | State

    @property
    def upstream(self) -> FlowRunHandle | State:
        """The wrapped run handle or State."""
        return self._upstream


def allow_failure(upstream: FlowRunHandle | State) -> AllowFailure:
    """Let a run start even if `upstream` (a run handle, or a final State) did not complete.

    As a parameter, the downstream receives the upstream's result, or its exception object
    when it failed, crashed or was cancelled; in `wait_for`, it only waits for the upstream
    to end, however it ends.
    """
    if isinstance(upstream, State):
        if not upstream.is_final():
            raise ValueError(
                f"allow_failure() needs a final State, got {upstream.name}: a run that has "
                "not ended has no result to pass on (wrap its handle instead)"
            )
    elif not _is_handle(upstream):
        raise TypeError(
            "allow_failure() takes a flow run handle (from Runtime.submit) or a final State, "
            f"got {type(upstream).__name__}"
        )
    return AllowFailure(upstream)


def _is_handle(value: Any) -> bool:
    return isinstance(value, FlowRunHandle)


# Values that cannot hold a handle: checked first, since has_upstreams sees every parameter.
_LEAVES = frozenset({int, float, str, bool, bytes, type(None)})


def has_upstreams(value: Any) -> bool:
    """Whether `value` holds a run handle or `allow_failure(...)` (also in lists, sets, dicts)."""
    if type(value) in _LEAVES:
        return False
    if isinstance(value, AllowFailure) or _is_handle(value):
        return True
    if isinstance(value, dict):
        return any(has_upstreams(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(has_upstreams(v) for v in value)
    return False


async def resolve_upstreams(
    parameters: dict[str, Any], wait_for: Iterable[FlowRunHandle | AllowFailure]
) -> dict[str, Any]:
    """Wait for every upstream; handles in parameters become their runs' results."""
    for item in wait_for:
        if isinstance(item, AllowFailure):
            await _outcome(item.upstream)  # any ending will do
        elif _is_handle(item):
            await _completed_value(item, where="wait_for")
        else:
            raise UpstreamFailed(
                "wait_for takes flow run handles (or allow_failure(handle)), "
                f"got {type(item).__name__}"
            )
    return {name: await _resolve(value, name) for name, value in parameters.items()}


async def _resolve(value: Any, where: str) -> Any:
    if isinstance(value, AllowFailure):
        return (await _outcome(value.upstream))[1]
    if _is_handle(value):
        return await _completed_value(value, where=f"parameter {where!r}")
    if isinstance(value, dict):
        return {k: await _resolve(v, where) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [await _resolve(v, where) for v in value]
        return type(value)(items)
    return value


async def _outcome(upstream: FlowRunHandle | State) -> tuple[State, Any]:
    """How an upstream ended: its final state, and its result or its exception object."""
    if isinstance(upstream, State):
        return upstream, _state_outcome(upstream)
    try:
        # First, so that a generator run nobody streams is consumed rather than waited on
        # for ever; a failed one raises from its stream.
        value = await upstream.result(raise_on_failure=False)
    except Exception as exc:
        value = exc
    return await upstream.wait(), value


def _state_outcome(state: State) -> Any:
    if state.is_completed():
        return state.data
    if isinstance(state.data, BaseException):
        return state.data
    message = state.message or f"Upstream run ended {state.type.value}."
    if state.is_cancelled():
        return CancelledRun(message)
    if state.is_crashed():
        return CrashedRun(message)
    return FailedRun(message)


async def _completed_value(handle: FlowRunHandle, *, where: str) -> Any:
    state, value = await _outcome(handle)
    if not state.is_completed():
        run = handle.flow_run
        reason = f": {state.message}" if state.message else ""
        raise UpstreamFailed(
            f"Upstream flow run {run.name!r} ({run.id}) in {where} ended {state.type.value}{reason}"
        )
    return value
