"""Table-driven tests of the pure transition policy."""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime import (
    AwaitingRetry,
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    FlowRun,
    NotReady,
    Paused,
    Pending,
    Running,
    Scheduled,
    State,
    StateType,
    TimedOut,
)
from runtime.policy import Status, decide
from runtime.states import StateDetails, now

ACCEPT, REJECT, WAIT, ABORT = Status.ACCEPT, Status.REJECT, Status.WAIT, Status.ABORT


def run_in(state: State | None, **kw: object) -> FlowRun:
    """A run currently in `state`; a running one is on its first attempt unless told otherwise."""
    if state is not None and state.is_running():
        kw.setdefault("run_count", 1)
    return FlowRun(name="r", flow_name="f", state=state, **kw)  # type: ignore[arg-type]


# (case id, current state, proposed state, expected status, expected resulting state name)
TABLE = [
    ("new run", None, Pending(), ACCEPT, "Pending"),
    ("pending to running", Pending(), Running(), ACCEPT, "Running"),
    ("running to completed", Running(), Completed(), ACCEPT, "Completed"),
    ("running to failed, no retries", Running(), Failed(), ACCEPT, "Failed"),
    ("running to timed out", Running(), TimedOut(), ACCEPT, "TimedOut"),
    ("running to crashed", Running(), Crashed(), ACCEPT, "Crashed"),
    ("running to cancelling", Running(), Cancelling(), ACCEPT, "Cancelling"),
    ("pending to cancelling", Pending(), Cancelling(), ACCEPT, "Cancelling"),
    ("pending to failed (validation)", Pending(), Failed(), ACCEPT, "Failed"),
    ("cancelling to cancelled", Cancelling(), Cancelled(), ACCEPT, "Cancelled"),
    ("cancelling refuses running", Cancelling(), Running(), REJECT, "Cancelling"),
    ("cancelling refuses completed", Cancelling(), Completed(), REJECT, "Cancelling"),
    ("cancelling refuses failed", Cancelling(), Failed(), REJECT, "Cancelling"),
    ("completed is final", Completed(), Failed(), REJECT, "Completed"),
    ("completed refuses running", Completed(), Running(), REJECT, "Completed"),
    ("failed refuses completed", Failed(), Completed(), REJECT, "Failed"),
    ("crashed refuses completed", Crashed(), Completed(), REJECT, "Crashed"),
    ("final refuses crashed", Completed(), Crashed(), ABORT, "Completed"),
    ("final refuses cancelling", Cancelled(), Cancelling(), ABORT, "Cancelled"),
    ("final refuses paused", Failed(), Paused(), ABORT, "Failed"),
    ("running refuses pending", Running(), Pending(), ABORT, "Running"),
    ("cancelled refuses pending", Cancelled(), Pending(), REJECT, "Cancelled"),
    ("pending may be renamed NotReady", Pending(), NotReady(), ACCEPT, "NotReady"),
    ("pending to pending is refused", Pending(), Pending(), ABORT, "Pending"),
    ("pause from running", Running(), Paused(pause_key="k"), ACCEPT, "Paused"),
    ("pause from pending refused", Pending(), Paused(), REJECT, "Pending"),
    ("resume from paused", Paused(), Running(), ACCEPT, "Running"),
    ("paused to cancelling", Paused(), Cancelling(), ACCEPT, "Cancelling"),
    ("paused refuses pending", Paused(), Pending(), REJECT, "Paused"),
    ("scheduled due now to running", Scheduled(), Running(), ACCEPT, "Running"),
]


@pytest.mark.parametrize(
    ("current", "proposed", "status", "name"),
    [pytest.param(c, p, s, n, id=i) for i, c, p, s, n in TABLE],
)
def test_transition_table(
    current: State | None, proposed: State, status: Status, name: str
) -> None:
    decision = decide(run_in(current), proposed)
    assert decision.status is status
    assert decision.state.name == name
    # Something is written exactly when the proposal (or a substitute) is accepted.
    assert (decision.run is not None) == (status is ACCEPT)


def test_failed_with_retries_left_becomes_awaiting_retry_after_the_delay() -> None:
    at = now()
    run = run_in(Running(), run_count=1, retries=2, retry_delay_seconds=0.25)
    decision = decide(run, Failed(message="boom", data=ValueError("x")), at=at)
    assert decision.status is REJECT
    assert decision.state.name == "AwaitingRetry"
    assert decision.state.type is StateType.SCHEDULED
    assert decision.state.message == "boom"
    assert isinstance(decision.state.data, ValueError)
    # Fractions of a second are kept (Prefect truncates them to whole seconds).
    assert decision.state.details.scheduled_time == at + timedelta(seconds=0.25)
    assert decision.run is not None and decision.run.state is decision.state


def test_retry_delay_list_is_indexed_by_attempt_and_repeats_its_last_value() -> None:
    run = run_in(Running(), retries=5, retry_delay_seconds=(0.1, 0.5))
    assert [run.retry_delay_for(n) for n in (1, 2, 3)] == [0.1, 0.5, 0.5]


def test_failed_with_retries_spent_is_accepted() -> None:
    run = run_in(Running(), run_count=3, retries=2)
    assert decide(run, Failed()).status is ACCEPT


def test_running_waits_for_the_scheduled_time() -> None:
    at = now()
    run = run_in(AwaitingRetry(scheduled_time=at + timedelta(seconds=1.5)))
    decision = decide(run, Running(), at=at)
    assert decision.status is WAIT
    assert decision.delay == pytest.approx(1.5)
    assert decision.run is None


def test_running_counts_attempts_and_sets_times() -> None:
    run = run_in(Pending())
    d1 = decide(run, Running())
    assert d1.run is not None and d1.run.run_count == 1 and d1.run.start_time is not None
    d2 = decide(d1.run, Completed())
    assert d2.run is not None
    assert d2.run.run_count == 1 and d2.run.end_time == d2.state.timestamp


def test_resuming_does_not_count_a_new_attempt() -> None:
    run = run_in(Paused(), run_count=1)
    decision = decide(run, Running())
    assert decision.run is not None and decision.run.run_count == 1
    assert decision.run.resuming is False


def test_pause_key_fires_once() -> None:
    d1 = decide(run_in(Running()), Paused(pause_key="k"))
    assert d1.run is not None and d1.run.pause_keys == ("k",)
    resumed = decide(d1.run, Running())
    assert resumed.run is not None
    again = decide(resumed.run, Paused(pause_key="k"))
    assert again.status is REJECT and again.state.is_running()


def test_resume_after_the_pause_timeout_fails_the_run() -> None:
    paused = Paused(timeout_seconds=1)
    details = msgspec.structs.replace(paused.details, pause_timeout=now() - timedelta(seconds=1))
    expired = msgspec.structs.replace(paused, details=details)
    decision = decide(run_in(expired), Running())
    assert decision.status is REJECT
    assert decision.state.is_failed()
    assert decision.state.message == "The flow was paused and never resumed."
    assert decision.run is not None


def test_duplicate_transition_id_is_idempotent() -> None:
    tid = uuid.uuid4()
    first = decide(run_in(Pending()), Running(details=StateDetails(transition_id=tid)))
    assert first.run is not None
    again = decide(first.run, Running(details=StateDetails(transition_id=tid)))
    assert again.status is REJECT and again.run is None
    assert again.state is first.run.state


def test_force_overrides_final_states() -> None:
    decision = decide(run_in(Completed()), Crashed(), force=True)
    assert decision.status is ACCEPT and decision.state.is_crashed()


def test_timestamps_strictly_increase() -> None:
    later = Completed()
    earlier = msgspec.structs.replace(Running(), timestamp=later.timestamp + timedelta(seconds=5))
    decision = decide(run_in(earlier), later)
    assert decision.state.timestamp > earlier.timestamp


_ANY_STATE = st.sampled_from(
    [Pending, Running, Completed, Failed, Crashed, Cancelling, Cancelled, Paused, Scheduled]
)


@given(st.lists(st.tuples(_ANY_STATE, st.booleans()), max_size=25), st.integers(0, 3))
def test_random_sequences_keep_the_invariants(
    proposals: list[tuple[object, bool]], retries: int
) -> None:
    """Final is final, Cancelling never becomes anything but Cancelled (unless forced)."""
    run = run_in(Pending(), retries=retries)
    for make, force in proposals:
        before = run.state
        assert before is not None
        decision = decide(run, make(), force=force)  # type: ignore[operator]
        if decision.run is None:
            continue
        after = decision.state
        if not force:
            assert not before.is_final(), "a final state was left without force"
            if before.is_cancelling():
                assert after.is_cancelled()
            if after.is_running() and before.is_scheduled():
                details = before.details.scheduled_time
                assert details is None or details <= after.timestamp
        assert decision.run.run_count >= run.run_count
        assert after.timestamp > before.timestamp
        run = decision.run


@pytest.mark.parametrize("force", [False, True])
def test_an_owners_write_to_a_run_no_longer_its_own_is_fenced(force: bool) -> None:
    me, other = uuid.uuid4(), uuid.uuid4()
    retrying = run_in(AwaitingRetry(), owner=None)  # recovered for a retry: nobody's now
    taken = run_in(Running(), owner=other)  # taken over by another owner
    for run in (retrying, taken):
        decision = decide(run, Completed(), force=force, owner=me)
        assert decision.status is Status.FENCED and decision.run is None
        assert decision.state is run.state
    mine = run_in(Running(), owner=me)
    assert decide(mine, Completed(), owner=me).status is ACCEPT
    assert decide(taken, Cancelling()).status is ACCEPT  # a write on no owner's behalf
