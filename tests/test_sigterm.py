"""SIGTERM to a process running flows: its runs end (Crashed, or Cancelled where a cancel was
asked) before it exits, and it exits as SIGTERM makes it. Child processes on a SQLite file."""

from __future__ import annotations

import signal
import sys
import uuid
from pathlib import Path

import anyio
import anyio.abc
import pytest

from runtime import Runtime, StateType
from tests._children import CHILD, read_until
from tests._helpers import names

pytestmark = pytest.mark.anyio

TERMINATED = "Execution was aborted by a termination signal."


async def _start(
    db: Path, n: int, backend: str, *options: str
) -> tuple[anyio.abc.Process, bytes, uuid.UUID, list[uuid.UUID]]:
    """A child holding `n` Running runs (after one Completed) on `db`: (child, output, ids)."""
    trio = ["--trio"] if backend == "trio" else []
    child = await anyio.open_process(
        [sys.executable, str(CHILD), "term", str(db), str(n), *trio, *options]
    )
    with anyio.fail_after(60):
        out = await read_until(child, b"READY")
    assert b"READY" in out, out
    lines = out.decode().splitlines()
    done = uuid.UUID(next(line.split()[1] for line in lines if line.startswith("DONE ")))
    runs = [uuid.UUID(line.split()[2]) for line in lines if line.startswith("RUN ")]
    return child, out, done, runs


async def test_sigterm_ends_the_runs_then_the_process_exits_by_it(
    tmp_path: Path, anyio_backend: str
) -> None:
    db = tmp_path / "runs.db"
    child, out, done, runs = await _start(db, 3, anyio_backend)
    async with child, Runtime(store=f"sqlite:///{db}") as other:
        # A cancel recorded by another process, which the child has not polled for yet.
        assert await other.cancel(runs[0]) is True
        child.send_signal(signal.SIGTERM)
        with anyio.fail_after(60):
            out += await read_until(child, b"never printed")
            assert await child.wait() == -signal.SIGTERM  # killed by SIGTERM, as by default
        assert await names(other, runs[0]) == ["Pending", "Running", "Cancelling", "Cancelled"]
        for run_id in runs[1:]:
            assert await names(other, run_id) == ["Pending", "Running", "Crashed"]
            run = await other.read_flow_run(run_id)
            assert run.state is not None and run.state.message == TERMINATED
        assert await names(other, done) == ["Pending", "Running", "Completed"]
    lines = out.decode().splitlines()
    assert sorted(line for line in lines if line.startswith(("CRASHED", "CANCELLED"))) == [
        "CANCELLED 0",
        "CRASHED 1",
        "CRASHED 2",
    ]


async def test_an_applications_own_sigterm_handler_is_left_alone(
    tmp_path: Path, anyio_backend: str
) -> None:
    db = tmp_path / "runs.db"
    child, _out, _, runs = await _start(db, 2, anyio_backend, "--app-handler")
    async with child:
        child.send_signal(signal.SIGTERM)
        with anyio.fail_after(60):
            assert b"APP" in await read_until(child, b"APP")  # the application's handler ran
        async with Runtime(store=f"sqlite:///{db}") as other:
            running = await other.list_flow_runs(state=StateType.RUNNING)
            assert {run.id for run in running} == set(runs)  # nothing of ours happened
        child.kill()
        await child.wait()


async def test_handle_sigterm_false_leaves_the_default_action(
    tmp_path: Path, anyio_backend: str
) -> None:
    db = tmp_path / "runs.db"
    child, out, _, runs = await _start(db, 2, anyio_backend, "--no-sigterm")
    async with child:
        child.send_signal(signal.SIGTERM)
        with anyio.fail_after(60):
            assert await child.wait() == -signal.SIGTERM
    assert b"CRASHED" not in out
    async with Runtime(store=f"sqlite:///{db}") as other:  # its runs are recovered as it opens
        for run_id in runs:
            run = await other.read_flow_run(run_id)
            assert run.state is not None and run.state.is_crashed()
            assert run.state.message != TERMINATED


async def test_the_handler_lives_as_long_as_the_runtimes_that_need_it() -> None:
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("SIGTERM is not at its default action in this test process")
    async with Runtime(handle_sigterm=False):
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    async with Runtime():
        installed = signal.getsignal(signal.SIGTERM)
        assert installed is not signal.SIG_DFL
        async with Runtime():  # a second one shares it
            assert signal.getsignal(signal.SIGTERM) == installed
        assert signal.getsignal(signal.SIGTERM) == installed
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the last one put it back
