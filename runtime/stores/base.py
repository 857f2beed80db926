"""The store protocol every backend implements."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
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
    writes_never_wait: bool
    """True when `create_flow_run` and `set_state` finish without ever suspending: the engine
    then skips the shielded cancel scope around them (a write that never yields cannot be
    interrupted by cancellation, so there is nothing to shield)."""
    read_only: bool
    """True when the store can only be read (its writes raise `StoreReadOnly`): a Runtime on it
    reads runs, starts none, and registers no owner (so renews no lease, recovers nothing)."""

    async def open(self) -> None:
        """Make the store ready (create schema, start writers). Idempotent."""

    async def close(self) -> None:
        """Flush pending writes and release resources. Idempotent."""

    async def create_flow_run(self, run: FlowRun) -> FlowRun:
        """Insert a new run; `run.state` is its first state and starts its history."""

    async def create_flow_runs(
        self, runs: Sequence[FlowRun], *, then: Sequence[State | None] | None = None
    ) -> list[FlowRun]:
        """Insert new runs in one transaction: all of them, or none (then it raises).

        Each `run.state` starts its run's history; `then[i]`, when given, is proposed for run i
        right after it, through the policy, in the same transaction (a run that can start at
        once is created Pending and Running together). Returns the runs as stored.
        """

    async def set_state(
        self,
        run_id: uuid.UUID,
        state: State,
        *,
        force: bool = False,
        stall_timeout: float | None = None,
        owner: uuid.UUID | None = None,
    ) -> Decision:
        """Propose `state` for the run through the transition policy and write what it decides.

        With `owner` (the run's driver writes so), the write is fenced: if the run's owner is
        no longer `owner`, nothing is written and the decision is FENCED with the stored state.

        With `stall_timeout`, a write that has to wait raises `StoreStalled` once the store has
        committed nothing at all for that many seconds: the bound is on the store's progress,
        not on this write's wait, so a healthy store working through a long queue is not stuck.
        """

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

    # -- ownership: each Runtime is an owner with a lease it renews while it lives -----------
    async def register_owner(self, owner_id: uuid.UUID, lease_seconds: float) -> None:
        """Record this process as a live owner whose lease ends `lease_seconds` from now.

        The record names this process (pid, start time, boot id, pid namespace), so that other
        processes on the same host can tell at once when it is gone.
        """

    async def renew_lease(self, owner_id: uuid.UUID, lease_seconds: float) -> bool:
        """Extend the lease; False if it had already expired or gone (it is registered again).

        Never waits behind queued run writes: a busy owner must not look dead.
        """

    async def release_owner(self, owner_id: uuid.UUID) -> None:
        """The owner is closing cleanly: forget it (or, if it leaves runs unfinished, expire
        its lease so that the next sweep recovers them)."""

    async def claim_flow_run(self, run_id: uuid.UUID, owner_id: uuid.UUID) -> FlowRun:
        """Make `owner_id` the owner of an unfinished run it is about to drive (a run created
        elsewhere, a resumed suspended run); the previous owner's writes are fenced off from
        then on. A final run is returned as it is. `FlowRunNotFound` if there is none."""

    async def runs_owned_by(self, owner_id: uuid.UUID) -> set[uuid.UUID]:
        """The ids of the unfinished runs whose owner is `owner_id` (cheap: an index)."""

    async def cancel_requests(self, owner_id: uuid.UUID) -> dict[uuid.UUID, str | None]:
        """The runs of `owner_id` someone asked to cancel (in Cancelling), with each request's
        message: how an owner learns of requests recorded by other processes. Cheap enough to
        poll every second (an index; SQLite asks only when the file has changed)."""

    async def recover_orphans(
        self,
        can_load: Callable[[str], bool] | None = None,
        *,
        full: bool = True,
        caller: uuid.UUID | None = None,
        only: Iterable[uuid.UUID] | None = None,
    ) -> list[Decision]:
        """End the runs whose owner stopped, one decision each; forget the owners that stopped.

        An owner has stopped when its lease has expired, when (seen from the same boot and pid
        namespace) its process is gone, or when its record is missing. Each of its unfinished
        runs becomes Crashed (Cancelled if it was Cancelling), or AwaitingRetry with no owner
        when it has retries left and `can_load(entrypoint)` (run in a worker thread) says its
        flow can be loaded again. Suspended runs are left alone. `full=False` (the periodic
        sweep) looks only at the runs of owners on record, which is cheap when none stopped;
        `full=True` (when a Runtime opens) also finds runs whose owner has no record. `caller`
        is the sweeping owner itself: alive, whatever its lease says, so never recovered.
        `only` looks at those runs alone (a canceller finishing a run whose owner is dead).
        """
