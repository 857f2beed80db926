"""What code inside a flow run sees of it: run context, run logger, `check_cancelled`."""

from __future__ import annotations

import builtins
import contextvars
import logging
import threading
from typing import TYPE_CHECKING, Any

import msgspec

from .errors import CancelledRun, FlowRunTimeoutError

if TYPE_CHECKING:
    from anyio.lowlevel import EventLoopToken

    from .flows import Flow
    from .models import FlowRun
    from .runtime import Runtime

__all__ = ["RunContext", "check_cancelled", "get_run_context", "get_run_logger"]

_logger = logging.getLogger("flowactor.flow_runs")


class _Interrupt:
    """Set from the event loop when a run's attempt is over (timeout or cancel), read by its code.

    Sync flows run in threads that cannot be cancelled; they see this through `check_cancelled`.
    A plain attribute is enough to signal across threads: `error` is written once, then read.
    """

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def set(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error

    def is_set(self) -> bool:
        return self.error is not None


class RunContext(msgspec.Struct, frozen=True, kw_only=True):
    """The flow run being executed, as seen from its own code (made for every attempt)."""

    flow: Flow[..., Any]
    flow_run: FlowRun
    parameters: dict[str, Any]
    runtime: Runtime
    log_prints: bool = False
    token: EventLoopToken | None = None  # the runtime's event loop, for calls from worker threads
    loop_thread: int = msgspec.field(default_factory=threading.get_ident)  # that loop's thread
    interrupt: _Interrupt = msgspec.field(default_factory=lambda: _Interrupt())
    engine: Any = None  # the run's actor (a BaseFlowRunEngine): pause and subflows tell it
    attempt: Any = None  # the attempt this code runs in (an Attempt): its pauses and subflows


_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "flowactor_run_context", default=None
)


def get_run_context() -> RunContext:
    """The context of the flow run this code is part of; RuntimeError outside a flow run."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("get_run_context() was called outside of a flow run")
    return ctx


def current_run_context() -> RunContext | None:
    """The current run's context, or None outside a run."""
    return _current.get()


def get_run_logger() -> logging.LoggerAdapter[logging.Logger]:
    """A logger whose records carry the run's id, name and flow name (`extra` fields)."""
    ctx = get_run_context()
    run = ctx.flow_run
    extra = {"flow_run_id": str(run.id), "flow_run_name": run.name, "flow_name": run.flow_name}
    return _RunLogger(_logger, extra)


class _RunLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes messages with the run's name so plain log output says which run spoke."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs.setdefault("extra", {}).update(self.extra or {})
        name = self.extra["flow_run_name"] if self.extra else "?"
        return f"[{name}] {msg}", kwargs


def check_cancelled() -> None:
    """Raise if the current run's attempt has been timed out or cancelled.

    A sync flow's thread cannot be interrupted: when its run times out or is cancelled, the
    run's state is recorded at once and the thread is abandoned, running on until the function
    returns. Long sync flows should call this now and then to stop early. A no-op outside a run.
    """
    ctx = _current.get()
    if ctx is not None and ctx.interrupt.error is not None:
        raise ctx.interrupt.error


def interrupt_error(timeout: float | None) -> BaseException:
    """The error `check_cancelled` raises after a timeout (or a cancel when timeout is None)."""
    if timeout is None:
        return CancelledRun("the flow run was cancelled")
    return FlowRunTimeoutError(f"Scope timed out after {timeout:g} second(s).")


# -- log_prints: print() inside a run with log_prints=True goes to the run logger ----------
_original_print = builtins.print
_print_lock = threading.Lock()  # installs the print wrapper once across threads


def _print(*args: Any, **kwargs: Any) -> None:
    ctx = _current.get()
    if ctx is None or not ctx.log_prints or kwargs.get("file") not in (None,):
        _original_print(*args, **kwargs)
        return
    sep = kwargs.get("sep") or " "
    get_run_logger().info(sep.join(str(a) for a in args))


def install_print_hook() -> None:
    """Route print() of runs with log_prints=True to their logger; other prints are unchanged."""
    with _print_lock:
        if builtins.print is not _print:
            builtins.print = _print
