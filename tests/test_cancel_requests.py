"""One cancel protocol, whoever asks: the process driving a run ends it; a canceller elsewhere
only records the request (Cancelling), except for a run nobody drives, which it ends itself."""

from __future__ import annotations

import signal
import sys
import uuid
from pathlib import Path

import anyio
import pytest

from runtime import FlowRun, MemoryStore, Pending, Runtime, SQLiteStore, StateType, flow
from runtime.stores import Store
from tests._children import CHILD, read_until, until
from tests._helpers import names

pytestmark = pytest.mark.anyio

CANCELLED = ["Pending", "Running", "Cancelling", "Cancelled"]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "runs.db")


async def test_another_process_cancels_a_run_the_owner_then_stops(
    tmp_path: Path, anyio_backend: str
) -> None:
    """Process B cancels a run process A executes: B's cancel() records the request and
    returns; A learns of it, runs its on_cancellation hook, stops the flow and writes
    Cancelled. No step of the flow happens after its run has ended."""
    db = tmp_path / "runs.db"
    backend = ["--trio"] if anyio_backend == "trio" else []
    async with await anyio.open_process(
        [sys.executable, str(CHILD), "steps", str(db), *backend]
    ) as a:
        with anyio.fail_after(60):
            out = await read_until(a, b"STEP 3")
        run_id = uuid.UUID(out.split(b"RUN ", 1)[1].split()[0].decode())
        async with Runtime(store=f"sqlite:///{db}") as b:
            assert await b.cancel(run_id) is True  # recorded; A ends the run
            with anyio.fail_after(60):
                out += await read_until(a, b"EXIT")
            assert await names(b, run_id) == CANCELLED
        await a.wait()
    lines = out.decode().split("\n")
    assert "HOOK" in lines and "END Cancelled" in lines, lines
    ended = lines.index("END Cancelled")
    assert lines.index("HOOK") < ended
    assert not [line for line in lines[ended:] if line.startswith("STEP")], lines[ended:]


async def test_another_runtime_cancels_a_run_this_one_drives(store: Store) -> None:
    hooked: list[str] = []
    started = anyio.Event()

    @flow(on_cancellation=[lambda f, r, s: hooked.append(s.message or "")])
    async def parked() -> None:
        started.set()
        await anyio.sleep_forever()

    async with Runtime(store=store, cancel_poll_seconds=0.05) as a:
        h = await a.submit(parked)
        await started.wait()
        async with Runtime(store=store) as b:
            assert await b.cancel(h.id, "stop it") is True
            state = await h.wait()
        assert state.is_cancelled() and state.message == "stop it"
        assert hooked == ["stop it"]
        assert await names(a, h.id) == CANCELLED


async def test_a_suspended_run_cancelled_elsewhere_is_ended_by_its_owner(store: Store) -> None:
    """Nobody drives a suspended run: its owner, told of the request, ends it Cancelled."""
    from tests.flows import suspending

    async with Runtime(store=store, cancel_poll_seconds=0.05) as a:
        h = await a.submit(suspending.approval, 1)
        assert (await h.wait()).name == "Suspended"
        async with Runtime(store=store) as b:
            assert await b.cancel(h.id) is True

            async def cancelled() -> bool:
                state = (await b.read_flow_run(h.id)).state
                return state is not None and state.is_cancelled()

            await until(cancelled)
        assert await names(a, h.id) == [
            "Pending",
            "Running",
            "Suspended",
            "Cancelling",
            "Cancelled",
        ]


async def test_a_run_nobody_owns_is_ended_by_the_canceller(store: Store) -> None:
    async with Runtime(store=store) as rt:
        run = await rt.store.create_flow_run(FlowRun(name="r", flow_name="f", state=Pending()))
        assert await rt.cancel(run.id) is True
        assert await names(rt, run.id) == ["Pending", "Cancelling", "Cancelled"]
        assert await rt.cancel(run.id) is True  # still Cancelled: asking again says so


async def test_a_run_whose_owner_died_is_ended_by_the_canceller(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    async with Runtime(store=f"sqlite:///{db}") as b:  # its own sweep is 10 s away
        async with await anyio.open_process(
            [sys.executable, str(CHILD), "park", str(db), "1", "60"]
        ) as a:
            with anyio.fail_after(60):
                assert b"RUNNING" in await read_until(a, b"RUNNING")
            a.send_signal(signal.SIGKILL)
            await a.wait()
        (run,) = await b.list_flow_runs(state=StateType.RUNNING)
        assert await b.cancel(run.id) is True
        assert await names(b, run.id) == CANCELLED
