"""What a runtime keeps in memory of one run it drives: the record its actor writes.

The run's actor is the only writer of its record (creation aside); handles and waiters read
it. The run's current state is kept once, in `flow_run.state`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from actors import Event, new_event

if TYPE_CHECKING:
    from .engine import BaseFlowRunEngine
    from .flows import Flow
    from .handle import FlowRunHandle
    from .models import FlowRun
    from .states import State

__all__ = ["NO_VALUE", "RunRecord"]

NO_VALUE: Final[Any] = object()  # the run has not returned a value (yet)


class RunRecord:
    """A live (or just finished) run: its stored form, its outcome, who waits for it."""

    __slots__ = (
        "_began_event",
        "_done",
        "actor",
        "began",
        "cancel_requested",
        "error",
        "finished",
        "flow",
        "flow_run",
        "item_receiver",
        "items",
        "name_error",
        "parameters",
        "value",
        "wait_for",
    )

    def __init__(
        self,
        flow: Flow[..., Any],
        flow_run: FlowRun,
        parameters: dict[str, Any],
        *,
        name_error: BaseException | None = None,
        wait_for: tuple[FlowRunHandle, ...] = (),
    ) -> None:
        self.flow = flow
        self.flow_run = flow_run  # as last written to the store; `.state` is the current state
        self.parameters = parameters  # as the function will get them (validated, resolved)
        self.name_error = name_error  # the flow_run_name template failed: the run fails
        self.wait_for = wait_for  # upstream runs that must end first
        self.value: Any = NO_VALUE  # what the function returned
        self.error: BaseException | None = None  # why the run did not complete
        self.cancel_requested = False
        self.began = False  # Running was decided (or the run ended)
        self.finished = False
        self._began_event: Event | None = None  # made only when someone waits
        self._done: Event | None = None  # made only when someone waits
        self.actor: BaseFlowRunEngine | None = None  # the run's actor while it is alive
        # Generator runs: values go out through `items`; one consumer takes `item_receiver`.
        self.items: MemoryObjectSendStream[Any] | None = None
        self.item_receiver: MemoryObjectReceiveStream[Any] | None = None
        if flow.isgenerator:
            self.items, self.item_receiver = anyio.create_memory_object_stream[Any](0)

    @property
    def state(self) -> State | None:
        """The run's current state (as its actor last wrote or decided it)."""
        return self.flow_run.state

    def mark_began(self) -> None:
        self.began = True
        if self._began_event is not None:
            self._began_event.set()

    async def wait_began(self) -> None:
        """Wait until Running was decided for the run, or it ended."""
        if not self.began:
            if self._began_event is None:
                self._began_event = new_event()
            await self._began_event.wait()

    def mark_finished(self) -> None:
        """The run is final: wake whoever waits for it."""
        self.finished = True
        self.mark_began()
        if self._done is not None:
            self._done.set()

    async def wait_done(self) -> None:
        """Wait until the run is final (a checkpoint even when it already is)."""
        if self.finished:
            await anyio.lowlevel.checkpoint()
            return
        if self._done is None:
            self._done = new_event()
        await self._done.wait()

    def take_item_receiver(self) -> MemoryObjectReceiveStream[Any]:
        """The stream of a generator run's values, for its one consumer."""
        receiver = self.item_receiver
        if receiver is None:
            kind = "generator" if self.flow.isgenerator else "non-generator"
            raise RuntimeError(f"the values of this {kind} run are not available to stream")
        self.item_receiver = None
        return receiver
