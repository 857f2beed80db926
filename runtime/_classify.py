"""Classify what came out of user code: failed, cancelled or crashed (exception groups included)."""

from __future__ import annotations

import enum

import anyio

__all__ = ["Outcome", "classify", "crash_message"]


class Outcome(enum.Enum):
    FAILED = "failed"  # only Exceptions: the run fails (and may retry)
    CANCELLED = "cancelled"  # only cancellation: someone cancelled the scope
    CRASHED = "crashed"  # a BaseException that is not a cancellation (KeyboardInterrupt, ...)


def classify(exc: BaseException) -> Outcome:
    """Precedence: any non-cancel BaseException crashes; then any Exception fails; else cancelled.

    Works through nested exception groups, which is how task-group errors arrive.
    """
    cancelled = anyio.get_cancelled_exc_class()
    leaves = _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    if any(not isinstance(e, Exception | cancelled) for e in leaves):
        return Outcome.CRASHED
    if any(isinstance(e, Exception) for e in leaves):
        return Outcome.FAILED
    return Outcome.CANCELLED


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for e in group.exceptions:
        if isinstance(e, BaseExceptionGroup):
            found.extend(_leaves(e))
        else:
            found.append(e)
    return found


def crash_message(exc: BaseException) -> str:
    """The Crashed state's message for `exc`, worded as Prefect words it."""
    if isinstance(exc, BaseExceptionGroup):
        crashers = [e for e in _leaves(exc) if not isinstance(e, Exception)]
        cancelled = anyio.get_cancelled_exc_class()
        crashers = [e for e in crashers if not isinstance(e, cancelled)] or crashers
        if crashers:
            exc = crashers[0]
    if isinstance(exc, KeyboardInterrupt):
        return "Execution was aborted by an interrupt signal."
    if isinstance(exc, SystemExit):
        return "Execution was aborted by Python system exit call."
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return "Execution was cancelled by the runtime environment."
    return f"Execution was interrupted by an unexpected exception: {type(exc).__name__}: {exc}"
