"""A new flow run as the store first records it: its name, parent, tags and options.

Separate from the actor so that every way of starting a run (submit, direct and subflow calls,
and next subprocess runs and workers) builds the same record.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from .context import current_run_context
from .models import FlowRun
from .states import Pending

if TYPE_CHECKING:
    from .flows import Flow

__all__ = ["new_flow_run"]


def new_flow_run(
    flow: Flow[..., Any], parameters: dict[str, Any], owner: uuid.UUID | None
) -> tuple[FlowRun, BaseException | None]:
    """A Pending run of `flow`, and the error its name template raised (None if it did not).

    A run made inside another run's context is that run's child: its parent id is recorded
    and it takes its parent's tags too (as Prefect's `tags()` contexts do).
    """
    run_id = uuid.uuid4()
    name, name_error = _run_name(flow, parameters, run_id)
    parent = current_run_context()
    tags = flow.tags
    if parent is not None and parent.flow_run.tags:
        tags = tuple(dict.fromkeys((*tags, *parent.flow_run.tags)))
    run = FlowRun(
        id=run_id,
        name=name,
        flow_name=flow.name,
        flow_version=flow.version,
        parameters=parameters,
        state=Pending(),
        parent_flow_run_id=parent.flow_run.id if parent is not None else None,
        tags=tags,
        retries=flow.retries,
        retry_delay_seconds=flow.retry_delay_seconds,
        entrypoint=flow.entrypoint,
        owner=owner,
    )
    return run, name_error


def _run_name(
    flow: Flow[..., Any], parameters: dict[str, Any], run_id: uuid.UUID
) -> tuple[str, BaseException | None]:
    """The run's name from `flow_run_name`; an error in it fails the run in `begin_run`."""
    default = f"{flow.name}-{run_id.hex[:8]}"
    template = flow.flow_run_name
    if template is None:
        return default, None
    try:
        name = template.format(**parameters) if isinstance(template, str) else template()
        if not isinstance(name, str):
            raise TypeError(
                f"Callable {template!r} returned type {type(name).__name__} "
                "but a string is required."
            )
    except Exception as exc:
        return default, exc
    return name, None
