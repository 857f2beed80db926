"""Upstream runs: handles passed as parameters or in `wait_for`, resolved before a run starts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runtime import FlowRunHandle

__all__ = ["UpstreamFailed", "has_upstreams", "resolve_upstreams"]


class UpstreamFailed(RuntimeError):
    """An upstream run did not complete, so this run cannot start."""


def _is_handle(value: Any) -> bool:
    from .runtime import FlowRunHandle

    return isinstance(value, FlowRunHandle)


def has_upstreams(value: Any) -> bool:
    """Whether `value` holds a run handle (at top level or inside lists, tuples, sets, dicts)."""
    if _is_handle(value):
        return True
    if isinstance(value, dict):
        return any(has_upstreams(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(has_upstreams(v) for v in value)
    return False


async def resolve_upstreams(
    parameters: dict[str, Any], wait_for: Iterable[FlowRunHandle]
) -> dict[str, Any]:
    """Wait for every upstream; handles in parameters become their runs' results."""
    for handle in wait_for:
        await _completed_value(handle, where="wait_for")
    return {name: await _resolve(value, name) for name, value in parameters.items()}


async def _resolve(value: Any, where: str) -> Any:
    if _is_handle(value):
        return await _completed_value(value, where=f"parameter {where!r}")
    if isinstance(value, dict):
        return {k: await _resolve(v, where) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [await _resolve(v, where) for v in value]
        return type(value)(items)
    return value


async def _completed_value(handle: FlowRunHandle, *, where: str) -> Any:
    state = await handle.wait()
    if not state.is_completed():
        run = handle.flow_run
        reason = f": {state.message}" if state.message else ""
        raise UpstreamFailed(
            f"Upstream flow run {run.name!r} ({run.id}) in {where} ended {state.type.value}{reason}"
        )
    return await handle.result()
