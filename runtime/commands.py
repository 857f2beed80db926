"""The state commands a flow-run actor receives in its mailbox."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "Begin",
    "Cancel",
    "Command",
    "Crash",
    "Fail",
    "Pause",
    "PauseExpired",
    "Resolved",
    "Resume",
    "Retry",
    "Succeed",
    "Timeout",
]


class Begin(msgspec.Struct):
    """Start the run: validate, name, propose Running, start the first attempt."""


class Resolved(msgspec.Struct):
    """Upstream runs have ended: `parameters` with their results, or the `error` that failed."""

    parameters: Any
    error: Any = None


class Retry(msgspec.Struct):
    """A retry delay (or a concurrency slot) is over: propose Running again."""


class Succeed(msgspec.Struct):
    """Attempt `attempt` returned `value`."""

    attempt: int
    value: Any


class Fail(msgspec.Struct):
    """Attempt `attempt` raised `error` (an Exception)."""

    attempt: int
    error: Any


class Timeout(msgspec.Struct):
    """Attempt `attempt` overran the flow's timeout."""

    attempt: int


class Crash(msgspec.Struct):
    """The run must end Crashed: a BaseException in user code, or its owner going away."""

    error: Any
    message: str | None = None


class Pause(msgspec.Struct):
    """Pause (or, with `reschedule`, suspend) the run; asked by the run's own code."""

    key: str
    timeout: float | None = None
    reschedule: bool = False


class PauseExpired(msgspec.Struct):
    """Nobody resumed the run within its pause timeout."""

    key: str


class Resume(msgspec.Struct):
    """Resume a paused run, handing `run_input` to the paused code."""

    run_input: Any = None


class Cancel(msgspec.Struct):
    """Cancel the run (sent on the system lane, so it never waits behind other commands)."""

    message: str = "Flow run was cancelled."


Command = (
    Begin
    | Resolved
    | Retry
    | Succeed
    | Fail
    | Timeout
    | Crash
    | Cancel
    | Pause
    | PauseExpired
    | Resume
)
