"""Fenced writes: an owner whose runs were recovered by another process writes nothing more.

The other process is played by the test, calling the store's recovery once the runtime's lease
has lapsed (its renewals are held back, as when a process is paused). Both stores.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest

from runtime import MemoryStore, Runtime, SQLiteStore, flow, resume_flow_run, suspend_flow_run
from runtime.stores import Store
from tests._children import until
from tests._helpers import names

pytestmark = pytest.mark.anyio


class _Gate:
    """The running flow's events (made by each test, inside its event loop)."""

    started: anyio.Event
    release: anyio.Event
    stopped: anyio.Event

    def reset(self) -> None:
        self.started, self.release, self.stopped = anyio.Event(), anyio.Event(), anyio.Event()


gate = _Gate()


@flow(retries=1)
async def finishes_late() -> int:
    """Module level, so recovery can find its entrypoint and choose a retry."""
    gate.started.set()
    await gate.release.wait()
    return 1


@flow
async def parks() -> None:
    gate.started.set()
    try:
        await anyio.sleep_forever()
    finally:
        gate.stopped.set()


@flow
async def waits_after_approval() -> str:
    await suspend_flow_run(key="approve")
    gate.started.set()
    await gate.release.wait()
    return "approved"


class _Renewals:
    """Renewals of the lease go through only once `resume` is set (a paused process)."""

    resume: anyio.Event

    async def renew_lease(self, owner_id: uuid.UUID, lease_seconds: float) -> bool:
        await self.resume.wait()
        held: bool = await super().renew_lease(owner_id, lease_seconds)  # type: ignore[misc]
        return held


class _PausedMemory(_Renewals, MemoryStore):
    pass


class _PausedSQLite(_Renewals, SQLiteStore):
    pass


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    memory = request.param == "memory"
    paused: Store = _PausedMemory() if memory else _PausedSQLite(tmp_path / "runs.db")
    return paused


def _arm(store: Store) -> None:
    """New events for this test's event loop: the flow's gate, the store's renewals."""
    gate.reset()
    assert isinstance(store, _Renewals)
    store.resume = anyio.Event()


async def _recover_once_lapsed(store: Store) -> str:
    """Play the other process: sweep until the runtime's lease has lapsed and its run is taken."""
    taken: list[str] = []

    async def recovered() -> bool:  # once the lease (0.3 s) has run out: a wall-clock matter
        taken.extend(d.state.name for d in await store.recover_orphans(lambda entrypoint: True))
        return bool(taken)

    await until(recovered)
    (name,) = taken
    return name


async def test_a_zombie_owner_cannot_complete_a_run_recovered_for_retry(store: Store) -> None:
    """The late Completed of an owner whose run was recovered is refused: the history never
    goes AwaitingRetry -> Completed with no Running between."""
    _arm(store)
    async with Runtime(store=store, lease_seconds=0.3, persist_timeout=30) as rt:
        h = await rt.submit(finishes_late)
        await gate.started.wait()
        assert await _recover_once_lapsed(store) == "AwaitingRetry"
        gate.release.set()  # the zombie's flow returns now and proposes Completed
        state = await h.wait()
        assert state.name == "AwaitingRetry"  # what the store holds: the run is not ours
        assert await names(rt, h.id) == ["Pending", "Running", "AwaitingRetry"]
        stored = await rt.read_flow_run(h.id)
        assert stored.owner is None and stored.state is not None
        assert stored.state.name == "AwaitingRetry"
        store.resume.set()  # type: ignore[attr-defined]


async def test_an_owner_that_finds_its_lease_lost_stops_its_recovered_runs(store: Store) -> None:
    """A parked run would never write again: the owner learns from its renewal that the lease
    had lapsed, and stops the runs that are no longer its own (their code is cancelled)."""
    _arm(store)
    async with Runtime(store=store, lease_seconds=0.3, persist_timeout=30) as rt:
        h = await rt.submit(parks)
        await gate.started.wait()
        assert await _recover_once_lapsed(store) == "Crashed"
        store.resume.set()  # type: ignore[attr-defined]  # the renewal lands: lease lost
        with anyio.fail_after(30):
            await gate.stopped.wait()
            state = await h.wait()
        assert state.is_crashed() and "lease expired" in (state.message or "")
        assert await names(rt, h.id) == ["Pending", "Running", "Crashed"]
        assert rt.active_runs == 0


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_run_resumed_elsewhere_becomes_that_runtimes_own(kind: str, tmp_path: Path) -> None:
    """Resuming a suspended run in another Runtime makes that Runtime its owner: a third one
    opening meanwhile does not take it for the orphan of the Runtime that suspended it."""
    store: Store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "runs.db")
    gate.reset()
    async with Runtime(store=store) as first:
        h = await first.submit(waits_after_approval)
        assert (await h.wait()).name == "Suspended"
    async with Runtime(store=store) as second:
        await resume_flow_run(h.id)
        await gate.started.wait()
        async with Runtime(store=store) as third:  # recovers orphans as it opens
            run = await third.read_flow_run(h.id)
            assert run.state is not None and run.state.is_running()
        gate.release.set()
        assert await second.handle(h.id).result() == "approved"
        assert await names(second, h.id) == [
            "Pending",
            "Running",
            "Suspended",
            "Running",
            "Completed",
        ]
