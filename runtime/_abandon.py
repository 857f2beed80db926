"""Awaiting a flow's coroutine so that code which swallows cancellation cannot hold its task.

A coroutine that catches `BaseException` in a loop with an await in it never ends once it is
cancelled: it swallows each cancellation and awaits again. Its task then never finishes, and
nothing that waits for that task can finish either: the run's timeout, the actor's task group,
the runtime's exit, and at the end `asyncio.run` / `trio.run` themselves, which wait for every
task. Python cannot stop such code, but we need not wait for it.

`abandon_after_grace` drives the user's coroutine itself (a trampoline: it sends to and throws
into the coroutine, and yields to the event loop whatever the coroutine yields) instead of
awaiting it directly. Once the attempt's own scope is cancelled and the cancellation has been
delivered for `grace` seconds without the coroutine ending, it stops passing cancellations on,
closes the coroutine (its `finally` blocks run, if it lets them) and raises the cancellation
itself, so the attempt's task ends as if the coroutine had let it through. The coroutine is
abandoned: it never runs again.

Only the attempt's scope counts (`scope.cancel_called`): cancellations that the user's own code
asks for (its `move_on_after`, say) and catches are none of our business.

Two things need care once a coroutine is given up:
- One that ignores even the close (it catches GeneratorExit and awaits again) is made immortal:
  finalizing it later would run its code once more, at some random moment or at interpreter
  exit, where such a loop spins for ever (its await fails at once there, and it swallows that
  too). Its memory is the price of never running it again.
- Cancel scopes it entered and never left (trio's `sleep` enters one; so does the user's own
  `move_on_after`) would corrupt the task's scope stack: they are exited here, innermost first,
  down to the attempt's scope. Each backend keeps that stack privately, so this is the one
  backend-specific part, tested on both.

Cancellation reaches a coroutine differently on each backend: asyncio throws CancelledError in,
trio sends in an `outcome.Error` that its trap unwraps. Both are recognised here. The cost on
the hot path: one generator frame per await that suspends and one type check per resumption;
nothing else until a cancellation arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import inspect
import logging
import time
import types
from collections.abc import Coroutine, Generator, Iterator
from typing import Any, TypeVar

import anyio
import sniffio
from outcome import Error

__all__ = ["abandon_after_grace", "abandoned_count"]

logger = logging.getLogger("flowactor.engine")

T = TypeVar("T")

_immortal = 0  # coroutines that ignored their close (see above)


def abandoned_count() -> int:
    """How many coroutines this process abandoned while they were still suspended."""
    return _immortal


@types.coroutine
def abandon_after_grace(
    coro: Coroutine[Any, Any, T], scope: anyio.CancelScope, grace: float, name: str = ""
) -> Generator[Any, Any, T]:
    """Await `coro`; give it up once `scope` is cancelled and it has resisted for `grace` s.

    `name` says whose code it is in the warning logged when it is given up.
    """
    value: Any = None
    error: BaseException | None = None
    since = None  # when a cancellation of `scope` first reached the coroutine
    while True:
        try:
            if error is None:
                request = coro.send(value)
            else:
                request, error = coro.throw(error), None
        except StopIteration as stop:
            result: T = stop.value
            return result
        try:
            value = yield request
        except BaseException as exc:  # asyncio throws a cancellation in
            if _cancels(exc, scope):
                since = since or time.monotonic()
                if time.monotonic() - since >= grace:
                    _abandon(coro, scope, since, name)
                    raise
            value, error = None, exc
        else:
            if type(value) is Error and _cancels(value.error, scope):  # trio sends one in
                since = since or time.monotonic()
                if time.monotonic() - since >= grace:
                    _abandon(coro, scope, since, name)
                    value.unwrap()  # raises the cancellation here, not in the coroutine


def _cancels(exc: BaseException, scope: anyio.CancelScope) -> bool:
    """Whether `exc` is a cancellation while the attempt's own scope is cancelled."""
    return scope.cancel_called and isinstance(exc, anyio.get_cancelled_exc_class())


def _abandon(
    coro: Coroutine[Any, Any, Any], scope: anyio.CancelScope, since: float, name: str
) -> None:
    resisted = time.monotonic() - since
    logger.warning(
        "%s swallowed cancellation for %.3g s: it is abandoned (never resumed)",
        name or getattr(coro, "__qualname__", "a coroutine"),
        resisted,
    )
    chain = list(_awaiting(coro))  # what the close may leave suspended, outermost first
    # GeneratorExit at its await: its finally blocks run, if it lets them. RuntimeError if it
    # ignored that too (caught it and awaited again); whatever else it raises is dropped.
    with contextlib.suppress(Exception):
        coro.close()
    suspended = [c for c in chain if _suspended(c)]
    if suspended:  # something in it ignored the close (an inner coroutine may, alone)
        for c in suspended:
            _make_immortal(c)
        _leave_scopes_entered_since(scope)


def _awaiting(obj: Any) -> Iterator[Any]:
    """`obj` and what it awaits, down to the innermost awaitable (async generators included)."""
    for _ in range(10_000):  # bounded, whatever went wrong
        if obj is None:
            return
        yield obj
        inner = _awaited(obj)
        if inner is None and type(obj).__name__ == "async_generator_asend":
            # An async generator's step: the generator itself is what holds the user's frame.
            inner = next((r for r in gc.get_referents(obj) if inspect.isasyncgen(r)), None)
        obj = inner


def _awaited(obj: Any) -> Any:
    for name in ("cr_await", "gi_yieldfrom", "ag_await"):
        inner = getattr(obj, name, None)
        if inner is not None:
            return inner
    return None


def _suspended(obj: Any) -> bool:
    """A coroutine or generator (of either kind) that started and has not finished."""
    for name in ("cr_frame", "gi_frame", "ag_frame"):
        if getattr(obj, name, None) is not None:
            return True
    return False


def _make_immortal(obj: object) -> None:
    """One reference nobody ever drops: `obj` is never finalized, not even at exit."""
    global _immortal
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    _immortal += 1


def _leave_scopes_entered_since(scope: anyio.CancelScope) -> None:
    """Exit, innermost first, the cancel scopes the current task entered inside `scope`."""
    try:
        if sniffio.current_async_library() == "trio":
            _leave_trio_scopes(scope)
        else:
            _leave_asyncio_scopes(scope)
    except Exception:  # an anyio or trio whose internals moved: the scope's exit complains
        logger.exception("could not leave the cancel scopes of an abandoned coroutine")


def _leave_asyncio_scopes(scope: anyio.CancelScope) -> None:
    from anyio._backends._asyncio import _task_states

    task = asyncio.current_task()
    state = _task_states.get(task) if task is not None else None
    for _ in range(10_000):  # bounded, whatever went wrong
        inner = state.cancel_scope if state is not None else None
        if inner is None or inner is scope:
            return
        inner.__exit__(None, None, None)


def _leave_trio_scopes(scope: anyio.CancelScope) -> None:
    import trio

    target = getattr(scope, "_CancelScope__original", scope)  # anyio wraps trio's scope
    task = trio.lowlevel.current_task()
    for _ in range(10_000):  # bounded, whatever went wrong
        status = task._cancel_status
        if status is None or status._scope is target:
            return
        status._scope.__exit__(None, None, None)
