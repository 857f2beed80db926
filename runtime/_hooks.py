"""State hooks: calling a flow's `on_running`, `on_completion`, ... hooks as Prefect does.

Hooks run in order, each bounded by the runtime's `hook_timeout`; whatever a hook raises is
logged and the next one runs (a hook never changes the run's state). Hooks of final and
cancelling states are shielded: they run even while the runtime is being cancelled.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from .states import StateType

if TYPE_CHECKING:
    from .flows import Flow
    from .models import FlowRun
    from .states import State

__all__ = ["HOOK_KINDS", "call_hook", "hooks_for_state"]

logger = logging.getLogger("flowactor.engine")

# Which hooks a state type runs.
HOOK_KINDS = {
    StateType.RUNNING: "on_running",
    StateType.COMPLETED: "on_completion",
    StateType.FAILED: "on_failure",
    StateType.CANCELLING: "on_cancellation",
    StateType.CRASHED: "on_crashed",
}


def hooks_for_state(flow: Flow[..., Any], state: State) -> tuple[Callable[..., Any], ...]:
    """The hooks of `flow` that entering `state` runs (usually none: checked first, cheaply)."""
    kind = HOOK_KINDS.get(state.type)
    if kind is None:
        return ()
    return flow.hooks_for(kind)


async def call_hook(
    hook: Callable[..., Any],
    flow: Flow[..., Any],
    flow_run: FlowRun,
    state: State,
    bound: float,
) -> None:
    """Call one hook as `hook(flow, flow_run, state)`, for at most `bound` seconds; never raises
    an Exception (a cancellation of the caller passes through)."""
    name = getattr(hook, "__name__", repr(hook))
    logger.info("Running hook %r in response to entering state %r", name, state.name)
    # Hooks of final and cancelling states run during cancellation and shutdown too:
    # shield them from it, and bound every hook so none can hold the run open for ever.
    shield = state.is_final() or state.is_cancelling()
    try:
        with anyio.move_on_after(bound, shield=shield) as scope:
            if inspect.iscoroutinefunction(hook):
                await hook(flow, flow_run, state)
            else:
                result = await anyio.to_thread.run_sync(
                    hook, flow, flow_run, state, abandon_on_cancel=True
                )
                if inspect.isawaitable(result):
                    await result
        if scope.cancelled_caught:
            logger.error("Hook %r did not finish within %g s", name, bound)
        else:
            logger.info("Hook %r finished running successfully", name)
    except BaseException as exc:
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            raise
        # Whatever a hook raises (even KeyboardInterrupt) changes neither the state nor
        # the other runs: it is logged and the next hook runs.
        logger.error("An error was encountered while running hook %r", name, exc_info=exc)
