"""`memory://`: an in-process store for tests, benchmarks and ephemeral embedding.

It keeps what a durable store keeps, so that a test on memory reads what SQLite would give:
parameters as JSON gives them back, a state's data only as a persisted result (decoded from its
payload) or an error record (`StoredError`). The answers to writes keep the live values, as the
SQLite store's do. Unlike a durable store, it also takes parameters JSON cannot hold, as they are.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec

from ..errors import FlowRunNotFound, ParameterEncodeError, StoredError
from ..models import FlowRun, Owner
from ..policy import Decision, Status, decide, first_state
from ..results import (
    PersistedResult,
    decode_parameters,
    decode_result,
    encode_parameters,
    error_info,
)
from ..states import State, StateType
from ._liveness import new_owner, stopped_because
from ._recovery import is_orphan_candidate, recover, wants_retry

__all__ = ["MemoryStore"]


class MemoryStore:
    """Runs and histories in dicts. Writes are atomic under one lock and durable at once.

    Nothing here awaits, so a write can never be cut short by cancellation. The lock only
    matters when several event loops in different threads share one store.
    """

    url = "memory://"
    writes_never_wait = True  # nothing here awaits
    read_only = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that overrides a write may await in it: it must say so explicitly.
        overrides = "set_state" in cls.__dict__ or "create_flow_run" in cls.__dict__
        if overrides and "writes_never_wait" not in cls.__dict__:
            cls.writes_never_wait = False

    def __init__(self) -> None:
        self._runs: dict[uuid.UUID, FlowRun] = {}
        self._history: dict[uuid.UUID, list[State]] = {}
        self._owners: dict[uuid.UUID, Owner] = {}
        self._cancelling: set[uuid.UUID] = set()  # runs set Cancelling (some may be past it)
        self._lock = threading.Lock()  # guards the dicts against writers on other threads

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create_flow_run(self, run: FlowRun) -> FlowRun:
        (created,) = await self.create_flow_runs((run,))
        return created

    async def create_flow_runs(
        self, runs: Sequence[FlowRun], *, then: Sequence[State | None] | None = None
    ) -> list[FlowRun]:
        made: list[tuple[FlowRun, FlowRun, list[State]]] = []  # (answer, kept, history)
        for i, run in enumerate(runs):
            if run.state is None:
                raise ValueError("a new flow run needs its first state")
            parameters = _kept_parameters(run)  # raises ParameterEncodeError where SQLite does
            # The first state goes through the policy too, for its bookkeeping.
            decision = first_state(run)
            assert decision.run is not None
            answer, history = decision.run, [decision.state]
            kept, _ = _kept(answer, decision.state, None, parameters)
            following = then[i] if then is not None else None
            if following is not None:
                decision = decide(answer, following)
                if decision.run is not None:
                    answer = decision.run
                    kept, state = _kept(decision.run, decision.state, None, parameters)
                    history.append(state)
            made.append((answer, kept, history))
        with self._lock:
            for run in runs:
                if run.id in self._runs:
                    raise ValueError(f"flow run {run.id} already exists")  # none is created
            for answer, kept, history in made:
                self._runs[answer.id] = kept
                self._history[answer.id] = history
        return [answer for answer, _, _ in made]

    async def set_state(
        self,
        run_id: uuid.UUID,
        state: State,
        *,
        force: bool = False,
        stall_timeout: float | None = None,  # a write here never waits: nothing can stall
        owner: uuid.UUID | None = None,
    ) -> Decision:
        result = None
        if type(state.data) is PersistedResult:
            # The answer carries the live value; what is kept is decoded from the payload.
            result = state.data
            state = msgspec.structs.replace(state, data=result.value)
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise FlowRunNotFound(run_id)
            decision = decide(run, state, force=force, owner=owner)
            if decision.run is not None:
                accepted = result if decision.status is Status.ACCEPT else None
                self._runs[run_id], kept = _kept(decision.run, decision.state, accepted)
                self._history[run_id].append(kept)
                if decision.state.is_cancelling():
                    self._cancelling.add(run_id)
        return decision

    async def read_flow_run(self, run_id: uuid.UUID) -> FlowRun:
        try:
            return self._runs[run_id]
        except KeyError:
            raise FlowRunNotFound(run_id) from None

    async def read_states(self, run_id: uuid.UUID) -> list[State]:
        with self._lock:
            try:
                return list(self._history[run_id])
            except KeyError:
                raise FlowRunNotFound(run_id) from None

    async def list_flow_runs(
        self,
        *,
        state: StateType | Iterable[StateType] | None = None,
        flow_name: str | None = None,
        limit: int | None = None,
    ) -> list[FlowRun]:
        wanted = _state_filter(state)
        with self._lock:
            runs = list(self._runs.values())
        found = [
            r
            for r in runs
            if (flow_name is None or r.flow_name == flow_name)
            and (wanted is None or (r.state is not None and r.state.type in wanted))
        ]
        return found if limit is None else found[:limit]

    # -- ownership (within one process, an owner's lease only lapses if its loop stalls) ------
    async def register_owner(self, owner_id: uuid.UUID, lease_seconds: float) -> None:
        owner = new_owner(owner_id, lease_seconds)
        with self._lock:
            self._owners[owner_id] = owner

    async def renew_lease(self, owner_id: uuid.UUID, lease_seconds: float) -> bool:
        with self._lock:
            owner = self._owners.get(owner_id)
        held = owner is not None and owner.lease_expires >= time.time()
        await self.register_owner(owner_id, lease_seconds)
        return held

    async def release_owner(self, owner_id: uuid.UUID) -> None:
        with self._lock:
            owner = self._owners.get(owner_id)
            if owner is None:
                return
            if any(r.owner == owner_id and is_orphan_candidate(r) for r in self._runs.values()):
                # Left unfinished: expire the lease, so that the next sweep recovers them.
                self._owners[owner_id] = msgspec.structs.replace(owner, lease_expires=0.0)
            else:
                del self._owners[owner_id]

    async def claim_flow_run(self, run_id: uuid.UUID, owner_id: uuid.UUID) -> FlowRun:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise FlowRunNotFound(run_id)
            if run.state is not None and not run.state.is_final() and run.owner != owner_id:
                run = self._runs[run_id] = msgspec.structs.replace(run, owner=owner_id)
        return run

    async def runs_owned_by(self, owner_id: uuid.UUID) -> set[uuid.UUID]:
        with self._lock:
            runs = list(self._runs.values())
        return {r.id for r in runs if r.owner == owner_id and r.state and not r.state.is_final()}

    async def cancel_requests(self, owner_id: uuid.UUID) -> dict[uuid.UUID, str | None]:
        found: dict[uuid.UUID, str | None] = {}
        with self._lock:
            for run_id in list(self._cancelling):
                state = self._runs[run_id].state
                if state is None or not state.is_cancelling():
                    self._cancelling.discard(run_id)  # ended since
                elif self._runs[run_id].owner == owner_id:
                    found[run_id] = state.message
        return found

    async def recover_orphans(
        self,
        can_load: Callable[[str], bool] | None = None,
        *,
        full: bool = True,
        caller: uuid.UUID | None = None,
        only: Iterable[uuid.UUID] | None = None,
    ) -> list[Decision]:
        wanted = None if only is None else set(only)
        decisions: list[Decision] = []
        at = time.time()
        with self._lock:
            stopped = {
                owner_id: why
                for owner_id, owner in self._owners.items()
                if owner_id != caller and (why := stopped_because(owner, at)) is not None
            }
            if not stopped and not full:
                return decisions  # the usual sweep: every owner alive, nothing to look at
            runs = self._runs.values() if wanted is None else map(self._runs.get, wanted)
            for run in [r for r in runs if r is not None]:
                if not is_orphan_candidate(run):
                    continue
                assert run.owner is not None
                owner = self._owners.get(run.owner)
                if owner is not None or run.owner == caller:
                    why = stopped.get(run.owner)
                else:
                    why = stopped_because(None, at)
                if why is None:
                    continue
                retry = wants_retry(run) and can_load is not None and _loads(can_load, run)
                decision = recover(run, owner, retry=retry, why=why)
                if decision.run is not None:
                    self._runs[run.id] = decision.run
                    self._history[run.id].append(decision.state)
                decisions.append(decision)
            for owner_id in stopped:
                del self._owners[owner_id]  # its runs are recovered: it is gone for good
        return decisions


def _kept_parameters(run: FlowRun) -> dict[str, Any]:
    """The run's parameters as JSON gives them back; as they are if JSON cannot hold them (a
    durable store refuses such a run: memory keeps it, for live objects in throwaway runs)."""
    parameters = run.parameters
    if all(_json_stable(value) for value in parameters.values()):
        return parameters  # what JSON would give back: the same values (the common case)
    try:
        return decode_parameters(encode_parameters(run.flow_name, parameters))
    except ParameterEncodeError:
        return dict(parameters)


def _json_stable(value: Any) -> bool:
    """Whether JSON gives `value` back as it is (a str, bool, None, or a number it holds)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-(2**63) <= value < 2**64)
    return kind is float and math.isfinite(value)


def _kept(
    run: FlowRun,
    state: State,
    result: PersistedResult | None,
    parameters: dict[str, Any] | None = None,
) -> tuple[FlowRun, State]:
    """`run` in `state`, and `state`, as a durable store keeps them (see the module's
    docstring); `result` is the persisted result the state was accepted with."""
    data = state.data
    if result is not None:
        kept: Any = decode_result(result.serializer, result.payload)
    elif isinstance(data, BaseException):
        kept = StoredError(*error_info(data))
    else:
        kept = None
    if kept is not data:
        state = msgspec.structs.replace(state, data=kept)
    if parameters is not None and parameters is not run.parameters:
        return msgspec.structs.replace(run, state=state, parameters=parameters), state
    if state is not run.state:
        return msgspec.structs.replace(run, state=state), state
    return run, state  # the common case (no data): nothing to copy


def _loads(can_load: Callable[[str], bool], run: FlowRun) -> bool:
    assert run.entrypoint is not None
    try:
        return can_load(run.entrypoint)
    except Exception:
        return False


def _state_filter(state: StateType | Iterable[StateType] | None) -> frozenset[StateType] | None:
    if state is None:
        return None
    if isinstance(state, StateType):
        return frozenset({state})
    return frozenset(state)
