"""One attempt of a run: the user's function executed once, and how that ended.

The attempt is the actor's work: it runs in the actor's own task when that task is free (async
flows) or in a worker thread (sync flows), under a cancel scope that carries the run's deadline
and that stopping the attempt cancels. It talks to the actor by messages only: its outcome
(`Succeed`, `Fail`, `Timeout`, `Crash`) is the actor's next command. What only the attempt
touches lives here: the run context, the pause keys, the subflow calls and their numbering.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from actors import Event, new_event

from ._abandon import abandon_after_grace
from ._classify import Outcome, classify
from ._generators import iterate_async, iterate_sync
from .commands import Command, Crash, Fail, Succeed, Timeout
from .context import RunContext, _current, _Interrupt, install_print_hook, interrupt_error
from .errors import CancelledRun
from .parameters import call_args

if TYPE_CHECKING:
    from ._record import RunRecord
    from ._slots import Slot
    from .engine import BaseFlowRunEngine
    from .flows import Flow

__all__ = ["Attempt", "run_attempt"]


class Attempt(_Interrupt):
    """One execution of a run's function (numbered from 1), as the actor started it.

    It is its own interrupt: what a sync flow's thread sees through `check_cancelled`.
    """

    __slots__ = (
        "_done",
        "number",
        "pauses",
        "previous",
        "running",
        "scope",
        "started",
        "stopped",
        "subflows",
        "thread_slot",
    )

    def __init__(self, number: int, previous: dict[str, RunRecord]) -> None:
        super().__init__()
        self.number = number
        # The attempt's scope: it carries the deadline, and stopping the attempt cancels it.
        self.scope = anyio.CancelScope()
        self.stopped = False  # stopped by the actor (cancel, crash, suspend): it has no outcome
        self.running = True
        self._done: Event | None = None  # made only when the actor waits for the end
        self.pauses = 0  # pause_flow_run calls without a key: keys "1", "2", ...
        self.subflows = 0  # subflow calls, numbered in call order
        self.previous = previous  # the run's subflows of earlier attempts, by call number
        self.started: dict[str, RunRecord] | None = None  # this attempt's subflows
        self.thread_slot: Slot | None = None  # a sync attempt's thread's place, while it runs

    def stop(self, error: BaseException) -> None:
        """Stop the attempt: cancel its scope; a sync flow's thread sees `error` when it checks."""
        self.set(error)
        self.stopped = True
        self.scope.cancel()

    def ended(self) -> None:
        self.running = False
        if self._done is not None:
            self._done.set()

    async def wait_ended(self, grace: float) -> None:
        """Give a stopped attempt a bounded moment to unwind (finally blocks, its subflows)."""
        if not self.running:
            return
        if self._done is None:
            self._done = new_event()
        # Shielded: this also runs while the actor itself is being torn down (on_stop).
        with anyio.move_on_after(grace, shield=True):
            await self._done.wait()

    def next_pause_key(self) -> str:
        """The default key of this attempt's next pause: its pauses are numbered in order."""
        self.pauses += 1
        return str(self.pauses)

    def reuse_subflow(self, flow: Flow[..., Any]) -> RunRecord | None:
        """The child run to reuse for this attempt's next subflow call, if any.

        Subflow calls are numbered per attempt. When a run is retried, a call whose earlier
        child Completed gets that child back: no second execution, no second on_completion.
        """
        self.subflows += 1
        previous = self.previous.get(str(self.subflows))
        if previous is None or previous.flow is not flow:
            return None
        state = previous.state
        return previous if state is not None and state.is_completed() else None

    def remember_subflow(self, record: RunRecord) -> None:
        """Record the child run started by this attempt's latest subflow call."""
        if self.started is None:
            self.started = {}
        self.started[str(self.subflows)] = record


async def run_attempt(engine: BaseFlowRunEngine, attempt: Attempt) -> Command | None:
    """Run one attempt of the user function and return how it ended, as the actor's command.

    None when the actor stopped the attempt: the handler that stopped it decides the state.
    """
    flow = engine.flow
    scope = attempt.scope
    number = attempt.number
    outcome: Command | None = None
    reset = _current.set(make_context(engine, attempt, engine.log_prints))
    try:
        with scope:
            timeout = flow.timeout_seconds
            if timeout is not None:
                scope.deadline = anyio.current_time() + timeout
            args, kwargs = call_args(flow.fn, engine.parameters)
            outcome = Succeed(number, await engine._invoke(args, kwargs, attempt))
        if scope.cancelled_caught:
            # Stopped by the actor (cancel, crash, ...): the handler that stopped it decides
            # the run's state. Otherwise the deadline passed.
            outcome = None if attempt.stopped else Timeout(number)
    except Exception as exc:
        # User code may turn the deadline's cancellation into an error of its own.
        timed_out = scope.cancel_called and not attempt.stopped
        outcome = Timeout(number) if timed_out else Fail(number, exc)
    except BaseException as exc:
        if classify(exc) is Outcome.CANCELLED:
            attempt.set(CancelledRun("the flow run was cancelled"))
            raise  # the actor's teardown: its on_stop decides the state
        outcome = Crash(exc)
    finally:
        _current.reset(reset)
        attempt.ended()
    if type(outcome) is Timeout:
        attempt.set(interrupt_error(flow.timeout_seconds))
    return outcome


def make_context(
    engine: BaseFlowRunEngine, attempt: Attempt | None, log_prints: bool
) -> RunContext:
    """The run context the function (or a hook) of `engine`'s run sees."""
    host = engine.host
    if log_prints:
        install_print_hook()
    return RunContext(
        flow=engine.flow,
        flow_run=engine.flow_run,
        parameters=engine.parameters,
        runtime=host.runtime,
        log_prints=log_prints,
        token=host.loop_token,
        interrupt=attempt if attempt is not None else _Interrupt(),
        engine=engine,
        attempt=attempt,
    )


# -- calling the function --------------------------------------------------------------------
def invoke_async(
    engine: BaseFlowRunEngine, args: tuple[Any, ...], kwargs: dict[str, Any], attempt: Attempt
) -> Awaitable[Any]:
    """What to await for an async flow's attempt: its coroutine (or its generator's drive),
    driven by `abandon_after_grace` so that code swallowing cancellation cannot hold the task.

    Returned rather than awaited, so that the attempt's task carries one frame of ours (the
    trampoline's) between the attempt and the user's coroutine.
    """
    items = engine.record.items
    if items is not None:
        coro = iterate_async(engine.flow.fn(*args, **kwargs), items, attempt.scope)
    else:
        coro = engine.flow.fn(*args, **kwargs)
    return abandon_after_grace(coro, attempt.scope, engine.host.cancel_grace, engine.flow_run.name)


def invoke_sync(
    engine: BaseFlowRunEngine, args: tuple[Any, ...], kwargs: dict[str, Any], attempt: Attempt
) -> Awaitable[Any]:
    """What to await for a sync flow's attempt: the call in a worker thread."""
    call: Callable[[], Any] = functools.partial(engine.flow.fn, *args, **kwargs)
    items = engine.record.items
    if items is None:
        return _in_thread(engine, attempt, call, 0.0)
    # A generator's thread talks to the event loop at every value: give it a moment to stop
    # (it stops at its next value) rather than leave it calling into a closed loop.
    token = anyio.lowlevel.current_token()
    call = functools.partial(_iterate_call, call, items, attempt.scope, token)
    return _in_thread(engine, attempt, call, engine.host.cancel_grace)


async def _in_thread(
    engine: BaseFlowRunEngine, attempt: Attempt, call: Callable[[], Any], grace: float
) -> Any:
    """Call in a worker thread, under the slot lent to this run or one of its own; the
    subflows it calls share that slot (a blocked thread never starves its children)."""
    threads = engine.host.threads
    lent = engine.lent_thread_slot()
    slot = attempt.thread_slot = lent.share() if lent is not None else await threads.acquire()
    try:
        name = f"flow-run {engine.flow_run.name}"
        return await threads.run(call, name=name, grace=grace, slot=slot)
    finally:
        attempt.thread_slot = None


def _iterate_call(
    make: Callable[[], Any], items: Any, deadline: anyio.CancelScope, token: Any
) -> Any:
    return iterate_sync(make(), items, deadline, token)
