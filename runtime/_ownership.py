"""A Runtime's ownership of its runs: its owner record, its lease, and recovering orphans.

Each Runtime registers as an owner with a lease and renews it from one background task (one
write per interval per Runtime, whatever the number of runs). Runs it creates carry its owner
id. When a Runtime opens a store it first recovers the runs of owners that stopped (lease
expired, or process gone); while it is open, it sweeps for such owners every interval, so that
runs of a process that died are ended by any live Runtime on the store, not only the next one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import attrs
from anyio.abc import TaskGroup

from .loading import load_flow_from_entrypoint
from .states import Cancelled, Cancelling

if TYPE_CHECKING:
    from .policy import Decision
    from .stores import Store

__all__ = [
    "Ownership",
    "can_load",
    "release_ownership",
    "request_cancel",
    "take_ownership",
]

logger = logging.getLogger("flowactor.runtime")


async def take_ownership(store: Store, lease_seconds: float) -> uuid.UUID:
    """Register a new owner, then recover the orphans of owners that stopped."""
    owner_id = uuid.uuid4()
    await store.register_owner(owner_id, lease_seconds)
    _report(await store.recover_orphans(can_load, full=True, caller=owner_id))
    return owner_id


def _report(decisions: list[Decision]) -> None:
    if decisions:
        retried = sum(1 for d in decisions if d.state.is_scheduled())
        logger.warning(
            "Recovered %d flow run(s) whose owning process stopped (%d to be retried)",
            len(decisions),
            retried,
        )


@attrs.define(eq=False)
class Ownership:
    """`async with`: an owner's background work, for as long as the block runs.

    Every `interval` seconds one task renews the lease (each try bounded by `bound`) and
    another sweeps the store for owners that stopped. When the store says the lease had lapsed,
    other processes may have recovered this owner's runs meanwhile: `on_lost(owned)` is called
    with the ids of the unfinished runs still this owner's, so that it stops the others (their
    writes would be refused anyway, but their code would go on until it next wrote).

    Every `cancel_poll` seconds a third task asks the store for the cancel requests others
    recorded against this owner's runs and hands them to `on_cancel(requests)`, which cancels
    the runs it drives and returns those it does not drive (a suspended run, say): nobody else
    will end them, so they are ended Cancelled here.
    """

    store: Store
    owner_id: uuid.UUID
    lease_seconds: float
    interval: float
    bound: float
    on_lost: Callable[[set[uuid.UUID]], None] = lambda owned: None
    cancel_poll: float = 1.0
    on_cancel: Callable[[dict[uuid.UUID, str | None]], list[uuid.UUID]] = lambda asked: []
    _task_group: TaskGroup | None = attrs.field(default=None, init=False)

    async def __aenter__(self) -> None:
        # The tasks' own task group; its cancel scope also covers the block's body.
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._renew_forever, name="flowactor lease renewal")
        task_group.start_soon(self._sweep_forever, name="flowactor orphan sweep")
        task_group.start_soon(self._watch_cancels_forever, name="flowactor cancel requests")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        task_group = self._task_group
        assert task_group is not None
        self._task_group = None
        task_group.cancel_scope.cancel()  # stops the tasks: the owner is done
        # As in ActorSystem: a cancellation goes to the group (which absorbs the one it
        # caused); any other error is kept out of it so that it propagates as is, not wrapped
        # in an ExceptionGroup.
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            return bool(await task_group.__aexit__(type(exc), exc, tb))
        await task_group.__aexit__(None, None, None)
        return False

    async def _renew_forever(self) -> None:
        """Renew the lease every `interval` seconds until cancelled; never raises an Exception."""
        while True:
            await anyio.sleep(self.interval)
            try:
                # Bounded: a stuck store must not stop later renewals from being tried.
                with anyio.fail_after(self.bound):
                    held = await self.store.renew_lease(self.owner_id, self.lease_seconds)
            except Exception as exc:
                logger.warning(
                    "Could not renew the runtime's lease on %s: %s",
                    self.store.url,
                    _describe(exc, self.bound),
                )
                continue
            if not held:
                logger.error(
                    "The runtime's lease on %s had expired before it was renewed: another "
                    "process may have recovered (crashed) its runs.",
                    self.store.url,
                )
                await self._after_lapse()

    async def _after_lapse(self) -> None:
        try:
            with anyio.fail_after(self.bound):
                owned = await self.store.runs_owned_by(self.owner_id)
        except Exception as exc:
            # Their writes are fenced all the same: each such run stops at its next write.
            logger.warning(
                "Could not read which runs %s still owns: %s",
                self.store.url,
                _describe(exc, self.bound),
            )
            return
        self.on_lost(owned)

    async def _sweep_forever(self) -> None:
        """Recover the runs of owners that stopped, every `interval` seconds, until cancelled."""
        while True:
            await anyio.sleep(self.interval)
            try:
                with anyio.fail_after(self.bound):
                    # Never its own runs: this owner is alive, even if its lease looks
                    # lapsed (a loop blocked for longer than the lease).
                    decisions = await self.store.recover_orphans(
                        can_load, full=False, caller=self.owner_id
                    )
                _report(decisions)
            except Exception as exc:
                logger.warning(
                    "Could not sweep %s for stopped owners: %s",
                    self.store.url,
                    _describe(exc, self.bound),
                )

    async def _watch_cancels_forever(self) -> None:
        """Act on cancel requests recorded by others, every `cancel_poll` seconds."""
        while True:
            await anyio.sleep(self.cancel_poll)
            try:
                with anyio.fail_after(self.bound):
                    requests = await self.store.cancel_requests(self.owner_id)
                    for run_id in self.on_cancel(requests) if requests else ():
                        message = requests[run_id] or "Flow run was cancelled."
                        await self.store.set_state(
                            run_id, Cancelled(message=message), owner=self.owner_id
                        )
            except Exception as exc:
                logger.warning(
                    "Could not read the cancel requests on %s: %s",
                    self.store.url,
                    _describe(exc, self.bound),
                )


async def request_cancel(
    store: Store, run_id: uuid.UUID, message: str, me: uuid.UUID | None
) -> bool:
    """Cancel a run this runtime (owner `me`) does not drive: record the request (Cancelling)
    and let the run's owner end it, or end it here when nobody drives it.

    Nobody drives the run when it has no owner, when its owner is `me` (a suspended run: its
    actor has ended) or when its owner has stopped (then recovery ends it, Cancelled). True if
    the run is Cancelled, or Cancelling with a live owner that will end it; False if it had
    ended otherwise. Never waits for another process.
    """
    run = await store.read_flow_run(run_id)
    if run.state is not None and run.state.is_final():
        return run.state.is_cancelled()
    decision = await store.set_state(run_id, Cancelling(message=message))
    if not decision.state.is_cancelling():
        return decision.state.is_cancelled()
    owner = (decision.run or run).owner
    if owner is not None and owner != me:
        # Cancelled at once if its owner has stopped; otherwise that owner ends it.
        await store.recover_orphans(None, full=True, only=[run_id])
        state = (await store.read_flow_run(run_id)).state
        return state is not None and (state.is_cancelling() or state.is_cancelled())
    final = await store.set_state(run_id, Cancelled(message=message))
    return final.state.is_cancelled()


def _describe(exc: Exception, bound: float) -> str:
    """What went wrong, never an empty string (a TimeoutError has no message of its own)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"the store did not answer within {bound:g} s (TimeoutError)"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def release_ownership(store: Store, owner_id: uuid.UUID) -> None:
    """Forget the owner at a clean exit (its runs are final by now, or will be recovered)."""
    try:
        await store.release_owner(owner_id)
    except Exception as exc:
        logger.warning("Could not release the runtime's lease on %s: %s", store.url, exc)


def can_load(entrypoint: str) -> bool:
    """True if the flow at `entrypoint` can be imported again (so its run can be retried)."""
    try:
        load_flow_from_entrypoint(entrypoint)
    except Exception:
        return False
    return True
