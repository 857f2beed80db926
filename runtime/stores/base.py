"""The store protocol every backend implements."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from ..models import FlowRun
from ..policy import Decision
from ..states import State, StateType

__all__ = ["Store"]


@runtime_checkable
class Store(Protocol):
    """Where flow runs and their state histories live.

    Every state write goes through `runtime.policy.decide` inside the store's own transaction,
    and returns only once the write (if any) is durable for that backend.
    """

    url: str

    async def open(self) -> None:
        """Make the store ready (create schema, start writers). Idempotent."""

    async def close(self) -> None:
        """Flush pending writes and release resources. Idempotent."""

    async def create_flow_run(self, run: FlowRun) -> FlowRun:
        """Insert a new run; `run.state` is its first state and starts its history."""

    async def set_state(self, run_id: uuid.UUID, state: State, *, force: bool = False) -> Decision:
        """Propose `state` for the run through the transition policy and write what it decides."""

    async def read_flow_run(self, run_id: uuid.UUID) -> FlowRun:
        """The run as stored now; `FlowRunNotFound` if there is none."""

    async def read_states(self, run_id: uuid.UUID) -> list[State]:
        """The run's state history, oldest first; `FlowRunNotFound` if there is no such run."""

    async def list_flow_runs(
        self,
        *,
        state: StateType | Iterable[StateType] | None = None,
        flow_name: str | None = None,
        limit: int | None = None,
    ) -> list[FlowRun]:
        """Runs matching every filter given, oldest first."""
