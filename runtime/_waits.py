"""What a run waits for before (or between) its attempts, beside its mailbox.

Upstream runs, a place under `concurrency_limit`, a retry delay: each wait is the actor's work
(so a cancel still reaches the actor meanwhile), under a scope that stopping the run cancels,
and what it returns is the actor's next command.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio

from ._upstreams import UpstreamFailed, resolve_upstreams
from .commands import Command, Resolved, Retry

if TYPE_CHECKING:
    from actors import Actor

    from ._slots import Limit, Places
    from .handle import FlowRunHandle

__all__ = ["Waits", "acquire_place", "resolve", "sleep_then_retry"]


class Waits:
    """The waits in progress of one run (a set made only when there are some)."""

    __slots__ = ("_scopes",)

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] | None = None

    def start(
        self, actor: Actor[Command], fn: Callable[..., Awaitable[Command]], *args: Any
    ) -> None:
        """Wait for `fn(*args)` as `actor`'s work; what it returns is the actor's next command."""
        scope = anyio.CancelScope()  # cancelled by cancel_all (cancel, crash, finish)
        scopes = self._scopes
        if scopes is None:
            scopes = self._scopes = set()
        scopes.add(scope)
        actor.start_work(_waiting, scope, scopes, fn, args, cancel=scope.cancel)

    def __bool__(self) -> bool:
        """Whether a wait is in progress."""
        return bool(self._scopes)

    def cancel_all(self) -> None:
        for scope in self._scopes or ():
            scope.cancel()


async def _waiting(
    scope: anyio.CancelScope,
    scopes: set[anyio.CancelScope],
    fn: Callable[..., Awaitable[Command]],
    args: tuple[Any, ...],
) -> Command | None:
    try:
        with scope:
            return await fn(*args)
        return None  # cancelled (the run is being cancelled or has ended)
    finally:
        scopes.discard(scope)


async def resolve(parameters: dict[str, Any], wait_for: Iterable[FlowRunHandle]) -> Resolved:
    """Wait for the upstream runs: the parameters with their results, or why the run fails."""
    try:
        return Resolved(await resolve_upstreams(parameters, wait_for))
    except UpstreamFailed as exc:
        return Resolved(None, exc)


async def sleep_then_retry(delay: float) -> Retry:
    await anyio.sleep(delay)
    return Retry()


async def acquire_place(places: Places, limit: Limit) -> Retry:
    """Wait for a place under `limit`; the run holds it (in `places`) from then on."""
    places.run = await limit.acquire()
    return Retry()
