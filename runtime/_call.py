"""Calling a flow directly: `my_flow(x)` / `await my_async_flow(x)`, as in Prefect."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import sniffio

from ._defaults import default_store
from .context import current_run_context
from .runtime import FlowRunHandle, Runtime, _result_of, current_runtime

if TYPE_CHECKING:
    from .flows import Flow

__all__ = ["call_flow"]


def call_flow(flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run `flow` on the ambient runtime (or a temporary one on the default store).

    Async flows give a coroutine. Sync flows run now: from plain sync code on a fresh event
    loop, from inside a sync flow on its runtime's loop. `return_state=True` gives the final
    State instead of the result.
    """
    return_state = bool(kwargs.pop("return_state", False))
    if flow.isasync:
        return _call_async(flow, args, kwargs, return_state)
    ctx = current_run_context()
    if ctx is not None and ctx.token is not None and threading.get_ident() != ctx.loop_thread:
        # A sync flow called from a sync flow's thread: run it on the parent's runtime.
        return anyio.from_thread.run(_call_async, flow, args, kwargs, return_state, token=ctx.token)
    if _loop_running():
        raise RuntimeError(
            f"the sync flow {flow.name!r} was called on a running event loop, where it would "
            "block the loop: use `await runtime.submit(flow, ...)` (or make the flow async)"
        )
    return anyio.run(_call_async, flow, args, kwargs, return_state)


async def _call_async(
    flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool
) -> Any:
    rt = current_runtime()
    if rt is not None:
        return await _run_owned(rt, flow, args, kwargs, return_state)
    async with Runtime(store=default_store()) as temporary:
        return await _run_owned(temporary, flow, args, kwargs, return_state)


async def _run_owned(
    rt: Runtime,
    flow: Flow[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    return_state: bool,
) -> Any:
    """Submit and wait. The caller owns this run: if the caller is cancelled, the run crashes."""
    handle: FlowRunHandle = await rt.submit(flow, *args, **kwargs)
    try:
        state = await handle.wait()
    except BaseException as exc:
        message = "Execution was cancelled by the runtime environment."
        if not isinstance(exc, anyio.get_cancelled_exc_class()):
            message = f"The caller of the flow was interrupted: {type(exc).__name__}"
        rt._crash_run(handle.id, exc, message)
        # The run's actor writes the Crashed state in a task the runtime owns; here we only
        # give it a bounded, shielded moment so the caller usually sees it done. (A native
        # asyncio Task.cancel() may cut this wait short; the write happens regardless.)
        with anyio.move_on_after(rt.persist_timeout, shield=True):
            await handle.wait()
        raise
    if return_state:
        return state
    return _result_of(handle._record)


def _loop_running() -> bool:
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True
