"""`run_flow_in_subprocess`: one flow run in a child process, against the same durable store.

Who writes what (no duplicated history): the child drives the run and writes every state of
it, including Cancelled and Crashed; whoever cancels writes only Cancelling, then sends
SIGTERM. The child's Runtime handles SIGTERM as every Runtime does (`runtime._signals`): a
recorded cancel request means a cancel (the on_cancellation hooks run and the run ends
Cancelled), anything else is a crash ("Execution was aborted by a termination signal."); then
the child exits as SIGTERM makes it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import uuid
from collections.abc import Iterable, Mapping
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from .context import current_run_context
from .errors import FlowRunNotFound
from .loading import load_flow_from_entrypoint
from .models import FlowRun
from .parameters import bind_parameters
from .runtime import Runtime
from .states import Cancelling, Pending
from .stores import Store, open_store

if TYPE_CHECKING:
    from .flows import Flow
    from .handle import FlowRunHandle

__all__ = ["cancel_flow_run_process", "run_flow_in_subprocess"]

_CLOSE_BOUND = 10.0  # seconds closing a store opened from a URL may take (it flushes a write)


def run_flow_in_subprocess(
    flow: Flow[..., Any],
    flow_run: FlowRun | None = None,
    parameters: dict[str, Any] | None = None,
    wait_for: Iterable[FlowRunHandle] | None = None,
    env: Mapping[str, str | None] | None = None,
    *,
    store: str | None = None,
    backend: str = "asyncio",
) -> BaseProcess:
    """Start a process (spawn) that runs `flow` against the durable store `store`.

    The store defaults to `FLOWACTOR_STORE` (it must be one another process can open: SQLite
    or PostgreSQL, not memory). The run's id is `process.flow_run_id` (an attribute set on the
    returned, already started process). `wait_for` is not supported across processes. `env`
    is set in the child before it loads the flow; a key whose value is None is removed there.
    Called inside a flow run, the new run is that run's child (parent id and tags).
    """
    if wait_for:
        raise ValueError("wait_for cannot be passed to a subprocess run: wait before starting it")
    url = _check_durable(store or os.environ.get("FLOWACTOR_STORE"))

    if flow_run is None:
        params = bind_parameters(flow.fn, (), dict(parameters or {}))
        parent = current_run_context()
        inherited = parent.flow_run.tags if parent is not None else ()
        flow_run = FlowRun(
            id=uuid.uuid4(),
            name=f"{flow.name}-{uuid.uuid4().hex[:8]}",
            flow_name=flow.name,
            flow_version=flow.version,
            parameters=params,
            state=Pending(),
            parent_flow_run_id=parent.flow_run.id if parent is not None else None,
            tags=tuple(dict.fromkeys((*flow.tags, *inherited))),
            retries=flow.retries,
            retry_delay_seconds=flow.retry_delay_seconds,
            entrypoint=flow.entrypoint,
        )
    elif parameters is not None:
        flow_run = _replace_parameters(flow_run, parameters)
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=_child_main,
        args=(url, flow.entrypoint, flow_run, dict(env or {}), backend),
        name=f"flowactor-run-{flow_run.id}",
    )
    process.flow_run_id = flow_run.id  # type: ignore[attr-defined]
    process.start()
    return process


async def cancel_flow_run_process(process: BaseProcess, store: Store | str) -> None:
    """Request the cancel of a subprocess run: record Cancelling, then SIGTERM the process.

    `store` is an open store object, or a store URL (the one `run_flow_in_subprocess` was
    given): a URL is opened for this one write and closed again. Cancelling the caller before
    the write lands leaves the process running.
    """
    run_id: uuid.UUID = process.flow_run_id  # type: ignore[attr-defined]
    cancelling = Cancelling(message="Flow run was cancelled.")
    if isinstance(store, str):
        _check_durable(store)
        opened = open_store(store)
        await opened.open()
        try:
            await opened.set_state(run_id, cancelling)
        finally:
            # Shielded and bounded, as a Runtime closes its store: the write must be flushed.
            with anyio.move_on_after(_CLOSE_BOUND, shield=True):
                await opened.close()
    else:
        await store.set_state(run_id, cancelling)
    process.terminate()


def _check_durable(url: str | None) -> str:
    """The URL of a store another process can open, or a ValueError saying what to pass."""
    if not url or url.startswith("memory:"):
        raise ValueError(
            "a subprocess run needs a durable store both processes can open: pass "
            "store='sqlite:///path/runs.db' (or set FLOWACTOR_STORE)"
        )
    return url


def _replace_parameters(flow_run: FlowRun, parameters: dict[str, Any]) -> FlowRun:
    return msgspec.structs.replace(flow_run, parameters=dict(parameters))


def _child_main(
    url: str, entrypoint: str, flow_run: FlowRun, env: dict[str, str | None], backend: str
) -> None:
    """The child process: load the flow again from its entrypoint and drive the run."""
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    anyio.run(_drive, url, entrypoint, flow_run, backend=backend)


async def _drive(url: str, entrypoint: str, flow_run: FlowRun) -> None:

    flow = load_flow_from_entrypoint(entrypoint)
    async with Runtime(store=url) as rt:
        try:
            stored = await rt.store.read_flow_run(flow_run.id)
        except FlowRunNotFound:
            # This process owns the run: if it dies, its lapsed lease lets recovery find it.
            owned = msgspec.structs.replace(flow_run, owner=rt.host.owner_id)
            stored = await rt.store.create_flow_run(owned)
        if stored.state is not None and stored.state.is_paused():
            return  # a suspended run goes on only through resume_flow_run
        # A SIGTERM (from cancel_flow_run_process, say) is the Runtime's to handle, as in
        # any process running flows: see runtime._signals.
        handle = await rt.start(flow, dict(stored.parameters), flow_run=stored)
        if flow.isgenerator:
            # Nobody in this process can consume its values: iterate it here so it runs
            # (Prefect never iterates generator flows in a subprocess, so they do nothing).
            with contextlib.suppress(Exception):
                await handle.result()
        await handle.wait()
