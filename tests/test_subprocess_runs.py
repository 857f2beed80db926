"""run_flow_in_subprocess: a run in a child process against the same SQLite store."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from runtime import Runtime
from runtime._subprocess_runs import cancel_flow_run_process
from runtime.flow_engine import run_flow_in_subprocess
from tests.flows import long

pytestmark = pytest.mark.anyio


def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


async def wait_exit(process: Any) -> int:
    await anyio.to_thread.run_sync(process.join, 60)
    assert process.exitcode is not None, "the child did not exit"
    return int(process.exitcode)


async def wait_running(rt: Runtime, run_id: uuid.UUID) -> None:
    with anyio.fail_after(60):
        while True:
            try:
                run = await rt.read_flow_run(run_id)
            except LookupError:
                run = None
            if run is not None and run.state is not None and run.state.is_running():
                return
            await anyio.sleep(0.05)  # polling another process's writes: no event to wait on


async def test_a_subprocess_run_completes_in_the_shared_store(tmp_path: Path) -> None:
    url = store_url(tmp_path)
    process = run_flow_in_subprocess(long.double, parameters={"x": 21}, store=url)
    assert await wait_exit(process) == 0
    async with Runtime(store=url) as rt:
        states = await rt.read_states(process.flow_run_id)  # type: ignore[attr-defined]
        assert [s.name for s in states] == ["Pending", "Running", "Completed"]


@pytest.mark.parametrize("given", ["store", "url"])
async def test_sigterm_after_a_cancel_request_gives_cancelling_then_cancelled(
    tmp_path: Path, given: str
) -> None:
    """The canceller may pass its open store, or the URL the subprocess run was started with."""
    url = store_url(tmp_path)
    process = run_flow_in_subprocess(long.waits_forever, store=url)
    run_id = process.flow_run_id  # type: ignore[attr-defined]
    async with Runtime(store=url) as rt:
        await wait_running(rt, run_id)
        await cancel_flow_run_process(process, rt.store if given == "store" else url)
        await wait_exit(process)
        names = [s.name for s in await rt.read_states(run_id)]
    assert names == ["Pending", "Running", "Cancelling", "Cancelled"]


async def test_sigterm_without_a_cancel_request_crashes_the_run(tmp_path: Path) -> None:
    url = store_url(tmp_path)
    process = run_flow_in_subprocess(long.waits_forever, store=url)
    run_id = process.flow_run_id  # type: ignore[attr-defined]
    async with Runtime(store=url) as rt:
        await wait_running(rt, run_id)
        process.terminate()
        await wait_exit(process)
        run = await rt.read_flow_run(run_id)
        names = [s.name for s in await rt.read_states(run_id)]
    assert names == ["Pending", "Running", "Crashed"]
    assert run.state is not None
    assert run.state.message == "Execution was aborted by a termination signal."


def test_a_memory_store_is_refused() -> None:
    with pytest.raises(ValueError, match="durable store"):
        run_flow_in_subprocess(long.double, parameters={"x": 1}, store="memory://")


async def test_cancelling_by_a_memory_store_url_is_refused() -> None:
    terminated: list[bool] = []
    process = SimpleNamespace(flow_run_id=uuid.uuid4(), terminate=lambda: terminated.append(True))
    with pytest.raises(ValueError, match="durable store"):
        await cancel_flow_run_process(process, "memory://")  # type: ignore[arg-type]
    assert not terminated  # nothing recorded, so no signal either


async def test_w12_a_generator_flow_runs_to_completion_in_a_subprocess(tmp_path: Path) -> None:
    url = store_url(tmp_path)
    process = run_flow_in_subprocess(long.values, parameters={"n": 3}, store=url)
    assert await wait_exit(process) == 0
    async with Runtime(store=url) as rt:
        run = await rt.read_flow_run(process.flow_run_id)  # type: ignore[attr-defined]
        assert run.state is not None and run.state.is_completed()
