"""Exceptions raised by the runtime to its users."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .states import State

__all__ = [
    "CancelledRun",
    "CrashedRun",
    "FailedRun",
    "FlowPauseTimeout",
    "FlowRunNotFound",
    "FlowRunTimeoutError",
    "NotPausedError",
    "OwnershipLost",
    "ParameterEncodeError",
    "ParameterTypeError",
    "ResultEncodeError",
    "RuntimeClosed",
    "StoreCorrupt",
    "StoreError",
    "StoreFileGone",
    "StoreFull",
    "StoreLocked",
    "StoreReadOnly",
    "StoreSchemaError",
    "StoredError",
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


class OwnershipLost(RuntimeError):
    """This process no longer owns the run: its write was refused (fenced).

    Another process recovered the run (this owner's lease had lapsed) or took it over. `state`
    is what the store holds; this process stops driving the run and writes nothing more for it.
    """

    def __init__(self, message: str, state: State) -> None:
        super().__init__(message)
        self.state = state


class FlowPauseTimeout(Exception):
    """A paused run was not resumed within its pause timeout (the run ends Failed)."""


class ParameterEncodeError(ParameterTypeError):
    """A flow parameter cannot be encoded for the store; the run was not created."""

    def __init__(self, message: str, *, parameter: str, type_name: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.type_name = type_name


class ResultEncodeError(TypeError):
    """A flow's return value cannot be encoded with its `result_serializer` (the run fails)."""


class StoredError(Exception):
    """An exception as a store records it: its type name and message.

    States read back from a persistent store carry this in place of the live exception, which
    only the process that raised it has.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message


class StoreError(RuntimeError):
    """The store could not do what was asked; the message names the store's file or URL."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message, path)
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])


class StoreLocked(StoreError):
    """Another connection held the database's write lock for longer than the busy timeout."""


class StoreStalled(StoreError):
    """The store committed nothing for the write's `stall_timeout` while the write waited.

    The write may still land later; the caller only stopped waiting for it.
    """


class StoreFileGone(StoreError):
    """The store's file was deleted, moved or replaced while the store was open.

    Writes are refused from then on: acknowledged, they would be lost with the old file.
    """


class StoreReadOnly(StoreError):
    """The database cannot be written (read-only file, mount or connection)."""


class StoreFull(StoreError):
    """The disk, or the database's configured size limit, is full."""


class StoreCorrupt(StoreError):
    """The file is not a database, or its contents are damaged."""


class StoreSchemaError(StoreError):
    """The database was written by a newer flowactor, or by something else entirely."""
