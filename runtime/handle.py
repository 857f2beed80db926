"""`FlowRunHandle`: a submitted run, to wait for, stream from, cancel; and its result."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import anyio

from ._record import NO_VALUE, RunRecord
from .commands import Cancel
from .errors import CancelledRun, CrashedRun, FailedRun, UnfinishedRun
from .states import State

if TYPE_CHECKING:
    from .models import FlowRun
    from .runtime import Runtime

__all__ = ["FlowRunHandle", "record_of", "result_of", "tell_cancel"]


class FlowRunHandle:
    """A submitted flow run. Waiting on it never owns it: cancelling a wait leaves the run alone."""

    __slots__ = ("_record", "_runtime")

    def __init__(self, runtime: Runtime, record: RunRecord) -> None:
        self._runtime = runtime
        self._record = record

    @property
    def id(self) -> uuid.UUID:
        return self._record.flow_run.id

    @property
    def flow_run(self) -> FlowRun:
        """The run as this runtime last wrote it."""
        return self._record.flow_run

    async def wait(self, timeout: float | None = None) -> State:  # noqa: ASYNC109
        """Wait for the final state; `TimeoutError` after `timeout` seconds (the run goes on).

        A checkpoint. Cancelling the caller cancels only the wait, never the run.
        """
        if timeout is None:
            await self._record.wait_done()
        else:
            with anyio.fail_after(timeout):
                await self._record.wait_done()
        state = self._record.state
        assert state is not None
        return state

    async def result(self, *, raise_on_failure: bool = True) -> Any:
        """The run's return value; raises its exception if it failed, crashed or was cancelled.

        For a generator run nobody is streaming, this consumes it and returns its values as a
        list. Cancelling the caller cancels only the wait, never the run.
        """
        record = self._record
        if record.item_receiver is not None:
            return [value async for value in self.stream()]
        await self.wait()
        return result_of(record, raise_on_failure=raise_on_failure)

    async def stream(self) -> AsyncGenerator[Any, None]:
        """Iterate a generator run's values as they are yielded (one consumer per run).

        Ends when the generator is exhausted (the run is Completed) and raises the run's error if
        it failed. Stopping early (break, aclose) cancels the run: it ends Cancelled, because the
        generator did not finish its work, and nothing else will ever consume the rest.
        """
        record = self._record
        receiver = record.take_item_receiver()
        try:
            async for value in receiver:
                yield value
            state = await self.wait()
            if not state.is_completed():
                result_of(record)  # raises the run's error
        finally:
            # Only synchronous cleanup here: this may run from the garbage collector.
            receiver.close()
            if not record.finished:
                tell_cancel(
                    record, "The consumer stopped iterating before the generator was exhausted."
                )

    async def cancel(self) -> bool:
        """Cancel the run; True if it ends Cancelled, False if it had already ended otherwise."""
        return await self._runtime.cancel(self.id)

    def __repr__(self) -> str:
        run = self._record.flow_run
        return f"FlowRunHandle(id={run.id}, name={run.name!r}, state={run.state!r})"


def record_of(handle: FlowRunHandle) -> RunRecord:
    """The in-memory record behind a handle (for the run core: subflow reuse, results)."""
    return handle._record


def tell_cancel(record: RunRecord, message: str) -> None:
    """Ask a run's actor to cancel the run (system lane: it never waits behind other commands)."""
    actor = record.actor
    if actor is not None:
        actor.tell_system(Cancel(message))


def result_of(record: RunRecord, *, raise_on_failure: bool = True) -> Any:
    """A final run's value, or its error raised (returned with `raise_on_failure=False`)."""
    state = record.state
    if state is None or not state.is_final():
        raise UnfinishedRun(f"Run is in {state.type.value if state else 'no'} state")
    if state.is_completed():
        if record.value is not NO_VALUE and not isinstance(record.value, State):
            return record.value
        return state.data
    error: BaseException
    if isinstance(state.data, BaseException):
        error = state.data
    elif isinstance(record.error, BaseException):
        error = record.error
    elif state.is_cancelled():
        error = CancelledRun(state.message or "Flow run was cancelled.")
    elif state.is_crashed():
        error = CrashedRun(state.message or "Flow run crashed.")
    else:
        error = FailedRun(state.message or "Flow run failed.")
    if not raise_on_failure:
        return error
    raise error
