"""State hooks: calling a flow's `on_running`, `on_completion`, ... hooks as Prefect does.

Hooks run in order, each bounded by the runtime's `hook_timeout`; whatever a hook raises is
logged and the next one runs (a hook never changes the run's state). Hooks of final and
cancelling states are shielded: they run even while the runtime is being cancelled.

Sync hooks run in daemon threads of their own (a `ThreadRunner`, as sync flows do), not in
anyio's worker threads: a hook that never returns is abandoned at `hook_timeout`, and then
neither keeps the process alive at exit (anyio's threads are not daemons) nor holds a token of
anyio's default thread limiter, which the rest of the process (a store's reads, say) needs.
Its thread keeps its place in the hooks' own limit until it returns.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from ._threads import ThreadRunner
from .states import StateType

if TYPE_CHECKING:
    from .flows import Flow
    from .models import FlowRun
    from .states import State

__all__ = ["HOOK_KINDS", "Hooks", "hooks_for_state"]

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


class Hooks:
    """How one Runtime calls hooks: each bounded by `timeout`, sync ones in threads of their own
    (at most `thread_limit` alive, abandoned ones included)."""

    __slots__ = ("threads", "timeout")

    def __init__(self, timeout: float, thread_limit: int) -> None:
        self.timeout = timeout
        self.threads = ThreadRunner(thread_limit)

    async def call(
        self, hook: Callable[..., Any], flow: Flow[..., Any], flow_run: FlowRun, state: State
    ) -> None:
        """Call one hook as `hook(flow, flow_run, state)`, for at most `timeout` seconds; never
        raises an Exception (a cancellation of the caller passes through)."""
        name = getattr(hook, "__name__", repr(hook))
        logger.info("Running hook %r in response to entering state %r", name, state.name)
        # Hooks of final and cancelling states run during cancellation and shutdown too:
        # shield them from it, and bound every hook so none can hold the run open for ever.
        shield = state.is_final() or state.is_cancelling()
        started = True
        try:
            with anyio.move_on_after(self.timeout, shield=shield) as scope:
                if inspect.iscoroutinefunction(hook):
                    await hook(flow, flow_run, state)
                else:
                    started = False
                    slot = await self.threads.acquire()  # all taken: hooks that never returned
                    started = True
                    call = functools.partial(hook, flow, flow_run, state)
                    result = await self.threads.run(call, name=f"hook {name}", slot=slot)
                    if inspect.isawaitable(result):
                        await result
            if not started:
                logger.error(
                    "Hook %r was not run: for %g s, all %d hook threads were held by hooks that "
                    "have not returned",
                    name,
                    self.timeout,
                    self.threads.limit,
                )
            elif scope.cancelled_caught:
                logger.error("Hook %r did not finish within %g s", name, self.timeout)
            else:
                logger.info("Hook %r finished running successfully", name)
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
            # Whatever a hook raises (even KeyboardInterrupt) changes neither the state nor
            # the other runs: it is logged and the next hook runs.
            logger.error("An error was encountered while running hook %r", name, exc_info=exc)
