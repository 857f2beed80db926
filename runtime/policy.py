"""The transition policy: which proposed states a run accepts, rejects, delays or refuses.

A pure module. Every store calls `decide` inside its own write transaction with the run as it
is stored, so the decision and the write are atomic. Rules (in order):

0. Fencing: a proposal made by an owner (`owner` given) is refused with FENCED, whatever it
   proposes and even forced, when the run's owner is no longer that owner: another process
   recovered the run (its owner's lease had lapsed) or took it over. A zombie owner's late
   writes never land.
1. Idempotency: a proposal carrying the same `transition_id` as the current state is rejected
   with the current state (a retried write whose first answer was lost).
2. Final states are final: a proposal against a final state is rejected (or aborted for
   Cancelling/Paused/Crashed) unless forced. The first terminal state wins.
3. Cancelling only goes to Cancelled.
4. Nothing goes back to Pending from Running, Cancelling or a final state.
5. Pause only from Running, and once per pause key; resume (Paused -> Running/Scheduled/
   Cancelling/final) only before the pause timeout, otherwise the run is failed.
6. Scheduled/Pending -> Running waits until the scheduled time (fractions of a second kept).
7. Running -> Failed with retries left becomes AwaitingRetry after the run's retry delay.

Accepted states get the bookkeeping Prefect's global transforms do: run_count, start and end
times, strictly increasing timestamps.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta

import msgspec

from .models import FlowRun
from .states import FINAL_STATES, AwaitingRetry, Failed, State, StateType, now

__all__ = ["Decision", "Status", "decide", "first_state"]

_RESUMABLE_TO = frozenset({StateType.RUNNING, StateType.SCHEDULED, StateType.CANCELLING})
_NO_PENDING_FROM = frozenset(
    {StateType.PENDING, StateType.RUNNING, StateType.CANCELLING, StateType.CANCELLED}
)
_ABORT_ON_FINAL = frozenset({StateType.CANCELLING, StateType.PAUSED, StateType.CRASHED})


class Status(enum.StrEnum):
    """How the policy answered a proposal."""

    ACCEPT = "ACCEPT"  # the proposed state was written
    REJECT = "REJECT"  # `state` is what the run is in now (maybe a substitute that was written)
    WAIT = "WAIT"  # propose again after `delay` seconds; nothing was written
    ABORT = "ABORT"  # the proposal makes no sense for this run; nothing was written
    FENCED = "FENCED"  # the proposer no longer owns the run; nothing was written


class Decision(msgspec.Struct, frozen=True):
    """The policy's answer. When `run` is not None, the store writes it and appends `state`."""

    status: Status
    state: State
    run: FlowRun | None = None
    delay: float = 0.0
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.status is Status.ACCEPT


def decide(
    run: FlowRun,
    proposed: State,
    *,
    force: bool = False,
    at: datetime | None = None,
    owner: uuid.UUID | None = None,
) -> Decision:
    """Decide what happens to `proposed` for `run` (as stored now). Pure: no I/O, no mutation.

    `owner` is the proposer's owner id when it writes as the run's owner (fenced), None for
    writes made on no one's behalf (a canceller, recovery).
    """
    current = run.state
    if current is None:
        return _write(run, proposed, Status.ACCEPT)
    stored_owner = run.owner
    if owner is not None and stored_owner is not owner and stored_owner != owner:
        reason = "The run is no longer this owner's: another process recovered or took it over."
        return Decision(Status.FENCED, current, reason=reason)

    tid = proposed.details.transition_id
    if tid is not None and tid == current.details.transition_id:
        return Decision(Status.REJECT, current, reason="duplicate transition")
    if force:
        return _write(run, proposed, Status.ACCEPT)

    # The types, compared directly: this runs for every write of every run.
    ctype, ptype = current.type, proposed.type
    if ctype in FINAL_STATES:
        reason = f"Run is already in terminal state {ctype.value}."
        status = Status.ABORT if ptype in _ABORT_ON_FINAL else Status.REJECT
        return Decision(status, current, reason=reason)
    if ctype is StateType.CANCELLING and ptype is not StateType.CANCELLED:
        return Decision(Status.REJECT, current, reason="Cancelling may only become Cancelled.")
    if ptype is StateType.PENDING and ctype in _NO_PENDING_FROM:
        renaming = ctype is StateType.PENDING and proposed.name not in ("Pending", current.name)
        if not renaming:
            reason = f"A {ctype.value} run cannot become PENDING."
            return Decision(Status.ABORT, current, reason=reason)
    if ptype is StateType.PAUSED:
        return _pause(run, current, proposed)
    if ctype is StateType.PAUSED:
        return _resume(run, current, proposed, at)
    if ptype is StateType.RUNNING and ctype is StateType.SCHEDULED:
        when = current.details.scheduled_time
        if when is not None:
            at = at or now()
            if when > at:
                return Decision(Status.WAIT, current, delay=(when - at).total_seconds())
    elif ptype is StateType.FAILED and ctype is StateType.RUNNING and run.run_count <= run.retries:
        delay = run.retry_delay_for(run.run_count)
        retry = AwaitingRetry(
            scheduled_time=(at or now()) + timedelta(seconds=delay),
            message=proposed.message,
            data=proposed.data,
        )
        return _write(run, retry, Status.REJECT)
    return _write(run, proposed, Status.ACCEPT)


def first_state(run: FlowRun) -> Decision:
    """The decision for a new run's first state (`run.state`): its bookkeeping, as `decide`
    would give it for a run with no state yet."""
    state = run.state
    assert state is not None
    waiting = state.type is StateType.PENDING or state.type is StateType.SCHEDULED
    fresh = run.run_count == 0 and run.start_time is None and run.end_time is None
    if waiting and fresh:
        return Decision(Status.ACCEPT, state, run=run)  # nothing to derive yet
    return decide(msgspec.structs.replace(run, state=None), state)


def _pause(run: FlowRun, current: State, proposed: State) -> Decision:
    if not current.is_running():
        reason = "Cannot pause flows that are not currently running."
        return Decision(Status.REJECT, current, reason=reason)
    key = proposed.details.pause_key
    if key is not None and key in run.pause_keys:
        return Decision(Status.REJECT, current, reason="This pause has already fired.")
    decision = _write(run, proposed, Status.ACCEPT)
    if key is not None and decision.run is not None:
        updated = msgspec.structs.replace(decision.run, pause_keys=(*run.pause_keys, key))
        return msgspec.structs.replace(decision, run=updated)
    return decision


def _resume(run: FlowRun, current: State, proposed: State, at: datetime | None) -> Decision:
    if not (proposed.type in _RESUMABLE_TO or proposed.is_final()):
        reason = f"A paused run cannot become {proposed.type.value}."
        return Decision(Status.REJECT, current, reason=reason)
    deadline = current.details.pause_timeout
    if deadline is not None and deadline < (at or now()) and not proposed.is_final():
        failed = Failed(message="The flow was paused and never resumed.")
        return _write(run, failed, Status.REJECT)
    if proposed.is_running() and not current.details.pause_reschedule:
        # Resuming a pause continues the same attempt: it does not count as a new run. A
        # suspended run starts its function again, so that is a new attempt.
        run = msgspec.structs.replace(run, resuming=True)
    return _write(run, proposed, Status.ACCEPT)


def _write(run: FlowRun, state: State, status: Status) -> Decision:
    """Stamp `state` and derive the run's counters from it (Prefect's global transforms)."""
    previous = run.state
    ts = state.timestamp
    if previous is not None and ts <= previous.timestamp:
        # Strictly increasing timestamps within a run's history.
        ts = previous.timestamp + timedelta(microseconds=1)
        state = msgspec.structs.replace(state, timestamp=ts)

    run_count, start, end, resuming = run.run_count, run.start_time, run.end_time, run.resuming
    stype = state.type
    was_final = previous is not None and previous.type in FINAL_STATES
    if stype is StateType.RUNNING:
        if not resuming:
            run_count += 1
        resuming = False
        start = start or ts
        end = None
    elif stype in FINAL_STATES:
        start = start or ts
        end = end if was_final else ts
        resuming = False
    elif was_final:
        end = None  # a forced move out of a final state reopens the run
    updated = msgspec.structs.replace(
        run, state=state, run_count=run_count, start_time=start, end_time=end, resuming=resuming
    )
    return Decision(status, state, run=updated)
