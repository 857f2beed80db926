"""Recovering orphaned runs: what a run whose owning process stopped becomes.

Shared by every store, so they all recover alike. Pure: the stores call these inside their own
write transaction, with the run as stored.
"""

from __future__ import annotations

import msgspec

from ..models import FlowRun, Owner
from ..policy import Decision, decide
from ..states import AwaitingRetry, Cancelled, Crashed, State, StateType

__all__ = ["UNFINISHED", "is_orphan_candidate", "recover", "wants_retry"]

# The non-final state types: a run in one of them is still driven by its owner.
UNFINISHED = (
    StateType.SCHEDULED,
    StateType.PENDING,
    StateType.RUNNING,
    StateType.CANCELLING,
    StateType.PAUSED,
)


def is_orphan_candidate(run: FlowRun) -> bool:
    """A run an owner drives that is not final. Suspended runs wait for a resume by design."""
    state = run.state
    if run.owner is None or state is None or state.is_final():
        return False
    return not (state.is_paused() and state.details.pause_reschedule)


def wants_retry(run: FlowRun) -> bool:
    """The run has retries left and a recorded entrypoint to load its flow from."""
    return bool(run.entrypoint) and run.retries > 0 and run.run_count <= run.retries


def recover(run: FlowRun, owner: Owner | None, *, retry: bool, why: str) -> Decision:
    """End an orphan through the policy (forced only if the policy would not write).

    Cancelling becomes Cancelled; a run that can be retried becomes AwaitingRetry and loses its
    owner (a later worker picks it up); anything else becomes Crashed. `why` says how the owner
    was found stopped (see `_liveness.stopped_because`).
    """
    assert run.state is not None
    who = "The process that owned this flow run"
    if owner is not None:
        who += f" ({owner.describe()})"
    stopped = f"{who} stopped ({why}) while the run was {run.state.name}."
    proposed: State
    if run.state.is_cancelling():
        proposed = Cancelled(message=stopped)
    elif retry:
        proposed = AwaitingRetry(message=f"{stopped} The run will be retried.")
    else:
        proposed = Crashed(message=stopped)
    decision = decide(run, proposed)
    if decision.run is None:
        decision = decide(run, proposed, force=True)
    if retry and decision.run is not None and decision.state.is_scheduled():
        decision = Decision(
            decision.status,
            decision.state,
            run=msgspec.structs.replace(decision.run, owner=None),
            reason=decision.reason,
        )
    return decision
