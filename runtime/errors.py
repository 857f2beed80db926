"""Exceptions raised by the runtime to its users."""

from __future__ import annotations

import uuid

__all__ = [
    "CancelledRun",
    "CrashedRun",
    "FailedRun",
    "FlowPauseTimeout",
    "FlowRunNotFound",
    "FlowRunTimeoutError",
    "NotPausedError",
    "ParameterTypeError",
    "RuntimeClosed",
    "UnfinishedRun",
]


class FlowRunTimeoutError(TimeoutError):
    """A flow run overran its `timeout_seconds`."""


class ParameterTypeError(TypeError):
    """Flow parameters did not match the function's signature or type hints."""


class FlowRunNotFound(LookupError):
    """No flow run with that id in the store."""

    def __init__(self, flow_run_id: uuid.UUID) -> None:
        super().__init__(f"no flow run with id {flow_run_id}")
        self.flow_run_id = flow_run_id


class RuntimeClosed(RuntimeError):
    """The Runtime is not open (never entered, or already shut down)."""


class UnfinishedRun(RuntimeError):
    """A result was asked of a run that has not reached a final state."""


class FailedRun(RuntimeError):
    """A run ended Failed without an exception to re-raise (e.g. it returned a Failed state)."""


class CrashedRun(RuntimeError):
    """A run ended Crashed without an exception to re-raise."""


class CancelledRun(RuntimeError):
    """A run ended Cancelled."""


class NotPausedError(RuntimeError):
    """`resume_flow_run` was called on a run that is not paused."""


class FlowPauseTimeout(Exception):
    """A paused run was not resumed within its pause timeout (the run ends Failed)."""
