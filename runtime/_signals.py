"""SIGTERM: a process running flows ends its runs before it exits, as SIGTERM makes it exit.

SIGTERM is how systemd, Docker and Kubernetes stop a process. Python leaves it at its default
action, which kills the process at once, with no `finally`: its runs would stay Running until
another process recovers them. While a Runtime (with `handle_sigterm`) is open, and if SIGTERM
still has its default action when it opens (no handler of the application's, such as
uvicorn's, whose shutdown then cancels the Runtime: its runs end Crashed that way), a handler
is installed from the main thread. On SIGTERM every open Runtime ends its runs: Cancelled
where a cancel was requested (here or recorded by another process), Crashed ("Execution was
aborted by a termination signal.") otherwise, hooks included. Then the handler steps aside
and SIGTERM is raised again with its default action, so that the process exits as SIGTERM
would have made it (killed by SIGTERM). That takes at most the longest bound of the open
Runtimes (a run's unwinding, its final write and its hooks); a second SIGTERM exits at once.
When the last Runtime closes, the default action is restored.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from .commands import Cancel, Crash
from .errors import CrashedRun
from .stores._wakeup import LoopWaker, current_waker

if TYPE_CHECKING:
    from ._host import Host

__all__ = ["TERMINATED", "SigtermGuard", "end_runs"]

logger = logging.getLogger("flowactor.runtime")

TERMINATED = "Execution was aborted by a termination signal."


class SigtermGuard:
    """`async with`: while entered, a SIGTERM ends the runs of `host()` before the process exits.

    `bound` is how long ending them may take. Covers nothing (`covered` is False) where the
    handler could not be installed: SIGTERM is the application's, or no Runtime in the main
    thread installed it.
    """

    def __init__(self, host: Callable[[], Host | None], bound: float) -> None:
        self._host = host
        self.bound = bound
        self.covered = False
        self._task_group: TaskGroup | None = None
        self._waker: LoopWaker | None = None

    async def __aenter__(self) -> None:
        # A task group of its own, to end the runs in when the signal comes.
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._waker = current_waker()
        self.covered = _registry.add(self)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        _registry.discard(self)
        task_group = self._task_group
        assert task_group is not None
        self._task_group = None
        task_group.cancel_scope.cancel()
        # As in Ownership: a cancellation goes to the group; any other error propagates as is.
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            return bool(await task_group.__aexit__(type(exc), exc, tb))
        await task_group.__aexit__(None, None, None)
        return False

    def signalled(self) -> bool:
        """From the signal handler: have the event loop end the runs. False if it is gone."""
        return self._waker is not None and self._waker.call_soon(self._start)

    def _start(self) -> None:
        task_group = self._task_group
        if task_group is None:  # closed meanwhile: nothing left to end here
            _registry.done(self)
        else:
            task_group.start_soon(self._end_runs, name="flowactor SIGTERM")

    async def _end_runs(self) -> None:
        try:
            host = self._host()
            if host is not None:
                with anyio.move_on_after(self.bound):
                    await end_runs(host, self.bound)
        finally:
            _registry.done(self)


async def end_runs(host: Host, bound: float) -> None:
    """End every run of `host` as a SIGTERM asks; returns once they are all final.

    A run whose cancel was requested (here, or by another process: the store is asked, as
    the owner's poll would) is cancelled, with its on_cancellation hooks; the others crash.
    """
    host.closing = True  # no new top-level runs
    host.crash_reason = TERMINATED
    requests: dict[uuid.UUID, str | None] = {}
    if host.owner_id is not None:
        try:
            with anyio.fail_after(min(bound, host.persist_timeout)):
                requests.update(await host.store.cancel_requests(host.owner_id))
        except Exception as exc:
            logger.warning("On SIGTERM, could not read the cancel requests: %r", exc)
    for run_id, record in list(host.runs.items()):
        if record.cancel_requested or run_id in requests:
            host.tell(run_id, Cancel(requests.get(run_id) or "Flow run was cancelled."))
        else:
            host.tell(run_id, Crash(CrashedRun(TERMINATED), TERMINATED))
    while host.runs:
        await next(iter(host.runs.values())).wait_done()


class _Registry:
    """The process's one SIGTERM handler and the guards it serves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards add/discard/done; never taken by the handler
        self._guards: dict[int, SigtermGuard] = {}
        self._installed = False
        # The guards still ending their runs after a SIGTERM (None before any SIGTERM).
        self._pending: set[int] | None = None
        self._pass_through = False  # the next SIGTERM takes its default action

    def add(self, guard: SigtermGuard) -> bool:
        with self._lock:
            # Only from the main thread, and only where SIGTERM has its default action.
            default = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            if not self._installed and _in_main_thread() and default:
                signal.signal(signal.SIGTERM, self._handle)
                self._installed = True
            if self._installed:
                self._guards[id(guard)] = guard
            return self._installed

    def discard(self, guard: SigtermGuard) -> None:
        with self._lock:
            self._guards.pop(id(guard), None)
            if self._pending is not None:
                self._finished(guard)
            elif not self._guards and self._installed and _in_main_thread():
                if signal.getsignal(signal.SIGTERM) == self._handle:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                self._installed = False  # an application's own handler is left alone

    def done(self, guard: SigtermGuard) -> None:
        with self._lock:
            self._finished(guard)

    def _finished(self, guard: SigtermGuard) -> None:
        pending = self._pending
        if pending is not None:
            pending.discard(id(guard))
            if not pending:
                _exit_by_sigterm(self)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """The SIGTERM handler (main thread, between two bytecodes of whatever runs there).

        Takes no lock: it may have interrupted this very thread while it held one.
        """
        guards = list(self._guards.values())
        if self._pass_through or self._pending is not None or not guards:
            _exit_by_sigterm(self)  # a second SIGTERM, or nothing to end
            return
        logger.warning("SIGTERM: ending the runs of %d runtime(s) before exiting", len(guards))
        self._pending = {id(guard) for guard in guards}
        bound = max(guard.bound for guard in guards)
        timer = threading.Timer(bound + 1.0, _exit_by_sigterm, (self,))
        timer.daemon = True
        timer.start()
        for guard in guards:
            if not guard.signalled():  # its event loop has ended
                self._pending.discard(id(guard))
        if not self._pending:
            _exit_by_sigterm(self)


def _exit_by_sigterm(registry: _Registry) -> None:
    """Exit as SIGTERM's default action makes a process exit: killed by SIGTERM."""
    if _in_main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    # Only the main thread may change a handler: ours lets the next SIGTERM through.
    registry._pass_through = True
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(1.0)  # the main thread handles it; if it never runs Python again, exit anyway
    os._exit(128 + signal.SIGTERM)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


_registry = _Registry()
