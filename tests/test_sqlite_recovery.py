"""Ownership, leases and crash recovery on the SQLite store (and the memory store's parity)."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from pathlib import Path

import anyio
import pytest

from runtime import (
    Cancelling,
    FlowRun,
    MemoryStore,
    Pending,
    Running,
    Runtime,
    SQLiteStore,
    Suspended,
    flow,
)
from runtime.stores import Store

pytestmark = pytest.mark.anyio


async def _dead_owner(store: Store) -> uuid.UUID:
    """An owner whose lease has already ended (registered with a lease that ended a second ago)."""
    owner = uuid.uuid4()
    await store.register_owner(owner, -1.0)
    return owner


def _run(owner: uuid.UUID | None, **fields: object) -> FlowRun:
    fields.setdefault("state", Pending())
    return FlowRun(name="r", flow_name="orphan", owner=owner, **fields)  # type: ignore[arg-type]


@flow(retries=2)
async def retryable() -> None:
    pass


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return SQLiteStore(tmp_path / "runs.db")


async def test_recovery_decides_by_state_and_retries(store: Store) -> None:
    await store.open()
    try:
        dead = await _dead_owner(store)
        alive = uuid.uuid4()
        await store.register_owner(alive, 60.0)
        here = f"{__name__}:retryable"
        running = await store.create_flow_run(_run(dead))
        await store.set_state(running.id, Running())
        pending = await store.create_flow_run(_run(dead))
        cancelling = await store.create_flow_run(_run(dead))
        await store.set_state(cancelling.id, Running())
        await store.set_state(cancelling.id, Cancelling())
        suspended = await store.create_flow_run(_run(dead))
        await store.set_state(suspended.id, Running())
        await store.set_state(suspended.id, Suspended())
        retry = await store.create_flow_run(_run(dead, retries=2, entrypoint=here))
        await store.set_state(retry.id, Running())
        unloadable = await store.create_flow_run(_run(dead, retries=2, entrypoint="no.such:flow"))
        await store.set_state(unloadable.id, Running())
        owned_alive = await store.create_flow_run(_run(alive))
        await store.set_state(owned_alive.id, Running())
        unowned = await store.create_flow_run(_run(None))

        decisions = await store.recover_orphans(lambda entrypoint: entrypoint == here)
        assert len(decisions) == 5

        async def now(run: FlowRun) -> str:
            stored = await store.read_flow_run(run.id)
            assert stored.state is not None
            return stored.state.name

        assert await now(running) == "Crashed"
        assert await now(pending) == "Crashed"
        assert await now(cancelling) == "Cancelled"
        assert await now(suspended) == "Suspended"
        assert await now(retry) == "AwaitingRetry"
        assert (await store.read_flow_run(retry.id)).owner is None
        assert await now(unloadable) == "Crashed"
        assert await now(owned_alive) == "Running"
        assert await now(unowned) == "Pending"
        history = [s.name for s in await store.read_states(running.id)]
        assert history == ["Pending", "Running", "Crashed"]

        # Idempotent: a second sweep finds nothing left to do.
        assert await store.recover_orphans(lambda entrypoint: True) == []
    finally:
        await store.close()


async def test_a_runtime_recovers_orphans_when_it_opens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    store = SQLiteStore(tmp_path / "runs.db")
    await store.open()
    dead = await _dead_owner(store)
    orphan = await store.create_flow_run(_run(dead))
    await store.set_state(orphan.id, Running())
    await store.close()

    async with Runtime(store=url) as rt:
        run = await rt.read_flow_run(orphan.id)
        assert run.state is not None and run.state.is_crashed()


async def test_one_lease_per_runtime_renewed_then_released(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"

    def owners() -> list[tuple[str, float]]:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT id, lease_expires FROM owners").fetchall()

    started = anyio.Event()

    @flow
    async def parked() -> None:
        started.set()
        await anyio.sleep_forever()

    store = _WatchedStore(db)
    async with Runtime(store=store, lease_seconds=0.3) as rt:
        handle = await rt.submit(parked)
        await started.wait()
        ((owner, first),) = owners()
        assert (await rt.read_flow_run(handle.id)).owner == uuid.UUID(owner)
        store.renewed = anyio.Event()
        with anyio.fail_after(5):  # renewed every lease/3 = 0.1 s
            await store.renewed.wait()
        ((_, second),) = owners()
        assert second > first
        await rt.shutdown(cancel=True)
    assert owners() == []


class _WatchedStore(SQLiteStore):
    """Tells the test when the runtime's lease has been renewed."""

    renewed = anyio.Event()

    async def renew_lease(self, owner_id: uuid.UUID, lease_seconds: float) -> bool:
        held = await super().renew_lease(owner_id, lease_seconds)
        self.renewed.set()
        return held


async def test_memory_store_ownership_round_trip() -> None:
    store = MemoryStore()
    owner = uuid.uuid4()
    await store.register_owner(owner, 60.0)
    assert await store.renew_lease(owner, 60.0) is True
    await store.release_owner(owner)
    assert await store.renew_lease(owner, 60.0) is False  # gone: registered again
