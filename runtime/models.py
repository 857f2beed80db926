"""The stored record of a flow run."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from .states import State, now

__all__ = ["FlowRun", "Owner"]


class FlowRun(msgspec.Struct, kw_only=True):
    """One execution of a flow: its identity, parameters, current state and counters.

    `retries` and `retry_delay_seconds` are copied from the flow when the run is created so
    the transition policy can decide retries inside the store's transaction.
    """

    id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    name: str
    flow_name: str
    flow_version: str | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    state: State | None = None
    run_count: int = 0
    parent_flow_run_id: uuid.UUID | None = None
    tags: tuple[str, ...] = ()
    created: datetime = msgspec.field(default_factory=now)
    start_time: datetime | None = None
    end_time: datetime | None = None
    retries: int = 0
    retry_delay_seconds: float | tuple[float, ...] = 0.0
    entrypoint: str | None = None
    pause_keys: tuple[str, ...] = ()
    resuming: bool = False
    owner: uuid.UUID | None = None  # the Runtime (process) driving the run; see `Owner`

    @property
    def state_type(self) -> str | None:
        """The current state's type, or None before the first state."""
        return None if self.state is None else self.state.type.value

    def retry_delay_for(self, attempt: int) -> float:
        """Seconds to wait before re-running after failed `attempt` (1-based)."""
        delay = self.retry_delay_seconds
        if isinstance(delay, tuple):
            if not delay:
                return 0.0
            return float(delay[min(attempt, len(delay)) - 1])
        return float(delay)


class Owner(msgspec.Struct, kw_only=True, frozen=True):
    """A Runtime that drives runs, with the lease it renews while it is alive.

    A non-final run whose owner has stopped is an orphan: any live Runtime on the store
    recovers it. An owner has stopped when its lease has expired or, seen from the same boot
    and pid namespace, its process is gone (`start_time`, `boot_id` and `pid_ns` say which
    process `pid` was; None where they are unknown, and then only the lease counts).
    """

    id: uuid.UUID
    pid: int
    hostname: str
    lease_expires: float  # seconds since the epoch (time.time()), same-host clocks
    start_time: int | None = None  # the process's start, in clock ticks since boot (Linux)
    boot_id: str | None = None  # /proc/sys/kernel/random/boot_id
    pid_ns: str | None = None  # the pid namespace, as /proc/self/ns/pid names it

    def describe(self) -> str:
        return f"pid {self.pid} on {self.hostname}"
