"""Starting a run: the one function behind `submit`, direct and subflow calls, resumed and
subprocess runs (and workers): record it in the store if it is new, then start its actor."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._creation import new_flow_run
from ._record import RunRecord
from .engine import engine_for
from .handle import FlowRunHandle
from .states import Running

if TYPE_CHECKING:
    from ._host import Host
    from .engine import BaseFlowRunEngine
    from .flows import Flow
    from .models import FlowRun
    from .states import State

__all__ = ["start_run", "start_runs"]


async def start_run(
    host: Host,
    flow: Flow[..., Any],
    parameters: dict[str, Any],
    *,
    wait_for: Iterable[FlowRunHandle] = (),
    flow_run: FlowRun | None = None,
    inline: bool = False,
) -> FlowRunHandle:
    """Start a run of `flow`: a new one, or `flow_run` as stored (claimed by this runtime).

    Returns once the run is recorded and its actor has its first command. Called in the
    caller's context: a run started inside another run of the same runtime is its subflow.
    With `inline`, the caller drives the run's actor itself next (see `Host.start`).
    """
    if flow_run is None:
        (handle,) = await start_runs(host, flow, (parameters,), wait_for=wait_for, inline=inline)
        return handle
    assert host.owner_id is not None
    flow_run = await host.store.claim_flow_run(flow_run.id, host.owner_id)
    record = RunRecord(flow, flow_run, parameters, wait_for=tuple(wait_for))
    host.start(record, engine_for(flow)(host, record), inline=inline)
    return FlowRunHandle(host.runtime, record)


async def start_runs(
    host: Host,
    flow: Flow[..., Any],
    parameter_sets: Iterable[dict[str, Any]],
    *,
    wait_for: Iterable[FlowRunHandle] = (),
    inline: bool = False,
) -> list[FlowRunHandle]:
    """Start new runs of `flow`, one per set of (bound) parameters, created in one store write.

    A run that can start at once (no upstream, no place to wait for, good name and
    parameters) is created Pending and Running together; the others Pending.
    """
    engine = engine_for(flow)
    upstreams = tuple(wait_for)
    records: list[RunRecord] = []
    actors: list[BaseFlowRunEngine] = []
    then: list[State | None] = []
    for parameters in parameter_sets:
        run, name_error = new_flow_run(flow, parameters, host.owner_id)
        record = RunRecord(flow, run, parameters, name_error=name_error, wait_for=upstreams)
        actor = engine(host, record)
        records.append(record)
        actors.append(actor)
        then.append(Running() if actor.ready_to_start() else None)
    try:
        stored = await host.store.create_flow_runs([r.flow_run for r in records], then=then)
    except BaseException:
        for actor in actors:
            actor.give_back()  # no run was created: the places taken for them go back
        raise
    runtime = host.runtime
    handles = []
    for record, actor, run in zip(records, actors, stored, strict=True):
        record.flow_run = run
        host.start(record, actor, inline=inline)
        handles.append(FlowRunHandle(runtime, record))
    return handles
