"""The seed engine's surface on the flow-run actor: Prefect's engine names that are not handlers.

`BaseFlowRunEngine` (runtime/engine.py) inherits these: accessors (`client`, `state` tests,
`result`), the run context, one attempt of the function, and the steps that start a run. Its
handlers (`begin_run`, `handle_*`, `set_state`, `call_hooks`) live with its state machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from actors import ActorStopped

from ._attempt import Attempt, make_context, run_attempt
from ._creation import new_flow_run
from .commands import Begin, Command
from .context import RunContext, _current, current_run_context
from .errors import CancelledRun
from .handle import result_of

if TYPE_CHECKING:
    from actors import ActorRef

    from ._host import Host
    from ._record import RunRecord
    from .flows import Flow
    from .models import FlowRun
    from .states import State
    from .stores import Store

__all__ = ["SeedSurface"]


class SeedSurface:
    """Prefect's `BaseFlowRunEngine` / `FlowRunEngine` names, for the flow-run actor."""

    # What the actor provides (see runtime/engine.py).
    host: Host
    record: RunRecord
    log_prints: bool
    if TYPE_CHECKING:

        @property
        def state(self) -> State: ...

        @property
        def attempt(self) -> Attempt | None: ...

        @property
        def ref(self) -> ActorRef[Command]: ...

        def stop_work(self, error: BaseException) -> None: ...

    @property
    def client(self) -> Store:
        """The store this engine writes the run's states to."""
        return self.host.store

    @property
    def heartbeat_seconds(self) -> float:
        """How often the runtime's one lease (which keeps every run alive) is renewed."""
        return self.host.heartbeat_seconds

    def is_pending(self) -> bool:
        return self.state.is_pending()

    def is_running(self) -> bool:
        return self.state.is_running()

    def cancel_all_tasks(self) -> None:
        """Cancel the run's work in progress (attempt, waits); abandon a sync thread."""
        self.stop_work(CancelledRun("the flow run's tasks were cancelled"))

    def result(self, *, raise_on_failure: bool = True) -> Any:
        """The final run's return value, or raise its error (`UnfinishedRun` before the end)."""
        return result_of(self.record, raise_on_failure=raise_on_failure)

    @classmethod
    async def create_flow_run(
        cls, host: Host, flow: Flow[..., Any], parameters: dict[str, Any]
    ) -> tuple[FlowRun, BaseException | None]:
        """Record a new Pending run of `flow`; also returns the error its name template raised."""
        run, name_error = new_flow_run(flow, parameters, host.owner_id)
        return await host.store.create_flow_run(run), name_error

    def start(self) -> None:
        """Begin the run: the first command in its mailbox (the host calls this on spawn)."""
        self.initialize_run()
        self.ref.tell_nowait(Begin())

    async def run_inline(self) -> None:
        """Begin the run and drive it in the calling task (a direct call lends its own task:
        the attempt runs there, and no task is made for the run unless mail comes meanwhile)."""
        self.initialize_run()
        await self.ref.serve_here(Begin())

    def tell_system(self, command: Command) -> None:
        """Tell this actor `command` on its system lane (dropped once the actor has stopped)."""
        with contextlib.suppress(ActorStopped):
            self.ref.tell_system(command)

    def initialize_run(self) -> None:
        """Nothing to take up front: the host's registry already reaches this run."""

    def setup_flow_run_suspension_request(self) -> None:
        """`suspend_flow_run(flow_run_id=...)` reaches a run through the host's registry."""

    def load_subflow_run(self, flow: Flow[..., Any]) -> RunRecord | None:
        """The child run to reuse for the current attempt's next subflow call, if any."""
        ctx = current_run_context()
        attempt: Attempt | None = ctx.attempt if ctx is not None and ctx.engine is self else None
        return attempt.reuse_subflow(flow) if attempt is not None else None

    @contextlib.contextmanager
    def setup_run_context(self) -> Iterator[RunContext]:
        """Make this run the current one for the code inside."""
        ctx = make_context(self, self.attempt, self.log_prints)  # type: ignore[arg-type]
        reset = _current.set(ctx)
        try:
            yield ctx
        finally:
            _current.reset(reset)

    def run_context(self) -> contextlib.AbstractContextManager[RunContext]:
        """The surroundings of the code of this run: its run context (see `setup_run_context`)."""
        return self.setup_run_context()

    async def call_flow_fn(self, attempt: Attempt) -> Command | None:
        """Run one attempt of the user function; returns how it ended, as a command."""
        return await run_attempt(self, attempt)  # type: ignore[arg-type]
