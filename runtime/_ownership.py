"""A Runtime's ownership of its runs: its owner record, its lease, and recovery on open.

Each Runtime registers as an owner with a lease and renews it from one background task (one
write per interval per Runtime, whatever the number of runs). Runs it creates carry its owner
id. When a Runtime opens a store it first recovers the runs of owners whose lease has expired:
their process stopped without recording how those runs ended.
"""

from __future__ import annotations

import logging
import uuid
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

if TYPE_CHECKING:
    from .stores import Store

__all__ = ["LeaseRenewal", "can_load", "release_ownership", "renew_lease_forever", "take_ownership"]

logger = logging.getLogger("flowactor.runtime")


async def take_ownership(store: Store, lease_seconds: float) -> uuid.UUID:
    """Register a new owner, then recover the orphans of owners that stopped."""
    owner_id = uuid.uuid4()
    await store.register_owner(owner_id, lease_seconds)
    decisions = await store.recover_orphans(can_load)
    if decisions:
        retried = sum(1 for d in decisions if d.state.is_scheduled())
        logger.warning(
            "Recovered %d flow run(s) whose owning process stopped (%d to be retried)",
            len(decisions),
            retried,
        )
    return owner_id


async def renew_lease_forever(
    store: Store, owner_id: uuid.UUID, lease_seconds: float, interval: float, bound: float
) -> None:
    """Renew the lease every `interval` seconds until cancelled; never raises an Exception."""
    while True:
        await anyio.sleep(interval)
        try:
            # Bounded: a stuck store must not stop later renewals from being tried.
            with anyio.fail_after(bound):
                held = await store.renew_lease(owner_id, lease_seconds)
        except Exception as exc:
            logger.warning("Could not renew the runtime's lease on %s: %s", store.url, exc)
            continue
        if not held:
            logger.error(
                "The runtime's lease on %s had expired before it was renewed: another process "
                "may have recovered (crashed) its runs.",
                store.url,
            )


class LeaseRenewal:
    """`async with`: one task renewing an owner's lease for as long as the block runs."""

    def __init__(
        self, store: Store, owner_id: uuid.UUID, lease_seconds: float, interval: float, bound: float
    ) -> None:
        self._args = (store, owner_id, lease_seconds, interval, bound)
        self._task_group: TaskGroup | None = None

    async def __aenter__(self) -> None:
        # The renewal task's own task group; its cancel scope also covers the block's body.
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(renew_lease_forever, *self._args, name="flowactor lease renewal")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        task_group = self._task_group
        assert task_group is not None
        self._task_group = None
        task_group.cancel_scope.cancel()  # stops the renewal task: the owner is done
        # As in ActorSystem: a cancellation goes to the group (which absorbs the one it
        # caused); any other error is kept out of it so that it propagates as is, not wrapped
        # in an ExceptionGroup.
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            return bool(await task_group.__aexit__(type(exc), exc, tb))
        await task_group.__aexit__(None, None, None)
        return False


async def release_ownership(store: Store, owner_id: uuid.UUID) -> None:
    """Forget the owner at a clean exit (its runs are final by now, or will be recovered)."""
    try:
        await store.release_owner(owner_id)
    except Exception as exc:
        logger.warning("Could not release the runtime's lease on %s: %s", store.url, exc)


def can_load(entrypoint: str) -> bool:
    """True if the flow at `entrypoint` can be imported again (so its run can be retried)."""
    from .loading import load_flow_from_entrypoint

    try:
        load_flow_from_entrypoint(entrypoint)
    except Exception:
        return False
    return True
