"""Starting a run: the one function behind `submit`, direct and subflow calls, resumed and
subprocess runs (and workers): record it in the store if it is new, then start its actor."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._creation import new_flow_run
from ._record import RunRecord
from .engine import engine_for
from .handle import FlowRunHandle

if TYPE_CHECKING:
    from ._host import Host
    from .flows import Flow
    from .models import FlowRun

__all__ = ["start_run"]


async def start_run(
    host: Host,
    flow: Flow[..., Any],
    parameters: dict[str, Any],
    *,
    wait_for: Iterable[FlowRunHandle] = (),
    flow_run: FlowRun | None = None,
) -> FlowRunHandle:
    """Start a run of `flow`: a new one (recorded Pending first), or `flow_run` as stored.

    Returns once the run is recorded and its actor has its first command. Called in the
    caller's context: a run started inside another run of the same runtime is its subflow.
    """
    name_error = None
    if flow_run is None:
        flow_run, name_error = new_flow_run(flow, parameters, host.owner_id)
        flow_run = await host.store.create_flow_run(flow_run)
    else:  # a run that exists already: this runtime drives it from now on
        assert host.owner_id is not None
        flow_run = await host.store.claim_flow_run(flow_run.id, host.owner_id)
    record = RunRecord(flow, flow_run, parameters, name_error=name_error, wait_for=tuple(wait_for))
    host.start(record, engine_for(flow)(host, record))
    return FlowRunHandle(host.runtime, record)
