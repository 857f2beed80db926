"""The host of a Runtime's runs: all that a run's actor, its attempt, pause and subflow code
see of the Runtime that drives them.

The Runtime builds one when it is entered and keeps it for as long as it is open. It holds
the store, the settings, the worker threads, the limits, the owner id, the event loop, the
registry of live runs and the inputs given to resumed runs: one place for each.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from anyio.lowlevel import EventLoopToken

from actors import ActorSystem

from .commands import Cancel, Crash

if TYPE_CHECKING:
    from ._hooks import Hooks
    from ._record import RunRecord
    from ._slots import Limit
    from ._threads import ThreadRunner
    from .engine import BaseFlowRunEngine
    from .runtime import Runtime
    from .stores import Store

__all__ = ["Host"]

CANCELLED_BY_ENVIRONMENT = "Execution was cancelled by the runtime environment."


@attrs.define(eq=False, kw_only=True)
class Host:
    """What runs see of their Runtime (one per open Runtime)."""

    runtime: Runtime  # for `get_run_context().runtime`; never reached into
    store: Store
    system: ActorSystem
    threads: ThreadRunner  # sync flows' threads
    hooks: Hooks  # calls hooks (sync ones in threads of their own)
    run_slots: Limit | None  # `concurrency_limit`, when set
    owner_id: uuid.UUID | None  # this Runtime's lease on the store
    loop_token: EventLoopToken  # the event loop the Runtime runs on
    persist_timeout: float
    hook_timeout: float
    cancel_grace: float
    heartbeat_seconds: float
    mailbox_size: int
    # Live runs by id: the one registry (suspend_flow_run, resume_flow_run, cancel use it).
    runs: dict[uuid.UUID, RunRecord] = attrs.field(factory=dict)
    # Inputs given to resumed runs, by (run id, pause key): a pause key that already fired
    # returns its input again (a suspended run re-runs its function from the start).
    run_inputs: dict[tuple[uuid.UUID, str], Any] = attrs.field(factory=dict)
    # Why unfinished runs crash if their actors are torn down (the runtime's exit reason).
    crash_reason: str = CANCELLED_BY_ENVIRONMENT
    # Leaving the Runtime: new top-level runs are refused, subflows of live runs still start.
    closing: bool = False
    # Starts admitted and not yet registered (their store write is in progress): leaving the
    # Runtime waits for them too, so that none is recorded after the actors are gone.
    starting: int = 0
    _starts_done: anyio.Event | None = None

    def start_admitted(self) -> None:
        self.starting += 1

    def start_ended(self) -> None:
        """An admitted start is registered (or failed)."""
        self.starting -= 1
        if self.starting == 0 and self._starts_done is not None:
            self._starts_done.set()
            self._starts_done = None

    async def wait_starts(self) -> None:
        """Wait until no admitted start is in progress."""
        if self.starting:
            if self._starts_done is None:
                self._starts_done = anyio.Event()
            await self._starts_done.wait()

    def start(self, record: RunRecord, actor: BaseFlowRunEngine, *, inline: bool = False) -> None:
        """Register a new run and start its actor (its first command: Begin); with `inline`,
        the caller serves the actor itself next (`actor.run_inline()`)."""
        self.runs[record.flow_run.id] = record
        record.actor = actor
        name = f"flow-run {record.flow_run.id}"
        self.system.spawn(actor, name=name, mailbox_size=self.mailbox_size)
        if not inline:
            actor.start()

    def forget(self, record: RunRecord) -> None:
        """The run is final: it leaves the registry."""
        self.runs.pop(record.flow_run.id, None)

    def tell(self, run_id: uuid.UUID, command: Cancel | Crash) -> bool:
        """Tell a live run's actor `command` on its system lane; False if no such live run."""
        record = self.runs.get(run_id)
        actor = record.actor if record is not None else None
        if actor is None:
            return False
        actor.tell_system(command)
        return True
