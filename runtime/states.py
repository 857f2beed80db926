"""Flow-run states: Prefect's state types and names, as msgspec Structs.

A `State` is an immutable-by-convention record of one transition. `data` carries the run's
result or exception in memory; stores decide what of it is persisted.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

__all__ = [
    "FINAL_STATES",
    "AwaitingRetry",
    "Cancelled",
    "Cancelling",
    "Completed",
    "Crashed",
    "Failed",
    "NotReady",
    "Paused",
    "Pending",
    "Running",
    "Scheduled",
    "State",
    "StateDetails",
    "StateType",
    "Suspended",
    "TimedOut",
    "now",
]


class StateType(enum.StrEnum):
    """The nine state types; four of them (see `FINAL_STATES`) end a run."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    PAUSED = "PAUSED"


FINAL_STATES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
)


def now() -> datetime:
    """The current time in UTC (every timestamp we write is timezone-aware)."""
    return datetime.now(UTC)


class StateDetails(msgspec.Struct, frozen=True, omit_defaults=True):
    """Extra fields a state may carry (scheduling, pause bookkeeping, idempotency). Immutable:
    most states carry none, and share one empty instance."""

    scheduled_time: datetime | None = None
    transition_id: uuid.UUID | None = None
    pause_key: str | None = None
    pause_timeout: datetime | None = None
    pause_reschedule: bool = False
    child_flow_run_id: uuid.UUID | None = None


_NO_DETAILS = StateDetails()


class State(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One state of a flow run. `data` is the result or exception, when there is one."""

    type: StateType
    name: str
    timestamp: datetime = msgspec.field(default_factory=now)
    message: str | None = None
    details: StateDetails = _NO_DETAILS
    data: Any = None

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        return self.type in FINAL_STATES

    def __repr__(self) -> str:
        msg = f", message={self.message!r}" if self.message else ""
        return f"{self.name}(type={self.type.value}{msg})"


def _state(type_: StateType, default_name: str, name: str | None, **kw: Any) -> State:
    return State(type=type_, name=name or default_name, **kw)


def Scheduled(
    *, scheduled_time: datetime | None = None, name: str | None = None, **kw: Any
) -> State:
    """A run waiting for its scheduled time (defaults to now)."""
    details = kw.pop("details", None) or _NO_DETAILS
    details = msgspec.structs.replace(details, scheduled_time=scheduled_time or now())
    return _state(StateType.SCHEDULED, "Scheduled", name, details=details, **kw)


def AwaitingRetry(
    *, delay: float = 0.0, scheduled_time: datetime | None = None, **kw: Any
) -> State:
    """A failed attempt that will run again at `scheduled_time` (now + delay)."""
    when = scheduled_time or now() + timedelta(seconds=delay)
    return Scheduled(scheduled_time=when, name="AwaitingRetry", **kw)


def Pending(*, name: str | None = None, **kw: Any) -> State:
    return _state(StateType.PENDING, "Pending", name, **kw)


def NotReady(**kw: Any) -> State:
    """Pending because an upstream run did not complete."""
    return Pending(name="NotReady", **kw)


def Running(*, name: str | None = None, **kw: Any) -> State:
    return _state(StateType.RUNNING, "Running", name, **kw)


def Completed(*, name: str | None = None, **kw: Any) -> State:
    return _state(StateType.COMPLETED, "Completed", name, **kw)


def Failed(*, name: str | None = None, **kw: Any) -> State:
    return _state(StateType.FAILED, "Failed", name, **kw)


def TimedOut(**kw: Any) -> State:
    """Failed because the run overran its timeout."""
    return Failed(name="TimedOut", **kw)


def Crashed(*, name: str | None = None, **kw: Any) -> State:
    return _state(StateType.CRASHED, "Crashed", name, **kw)


def Cancelling(*, name: str | None = None, **kw: Any) -> State:
    return _state(StateType.CANCELLING, "Cancelling", name, **kw)


def Cancelled(*, name: str | None = None, **kw: Any) -> State:
    return _state(StateType.CANCELLED, "Cancelled", name, **kw)


def Paused(
    *,
    timeout_seconds: float | None = None,
    pause_key: str | None = None,
    reschedule: bool = False,
    name: str | None = None,
    **kw: Any,
) -> State:
    """A run waiting to be resumed; `reschedule=True` is a Suspended run whose actor has ended."""
    details = StateDetails(
        pause_key=pause_key,
        pause_reschedule=reschedule,
        pause_timeout=now() + timedelta(seconds=timeout_seconds) if timeout_seconds else None,
    )
    return _state(StateType.PAUSED, "Paused", name, details=details, **kw)


def Suspended(**kw: Any) -> State:
    """A paused run whose process may exit; resuming reloads the flow."""
    return Paused(reschedule=True, name="Suspended", **kw)
