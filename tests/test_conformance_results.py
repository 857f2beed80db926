"""Section 4 result scenarios (C130-C135): persisted results, and runs in a subprocess.

Without a server, "read back from the API" means read from the SQLite store by a runtime that
did not run the flow. Subprocess runs share that store with the test process.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime import Runtime, State, flow
from runtime.flow_engine import run_flow_in_subprocess
from tests._helpers import names
from tests.flows import long, outcomes

pytestmark = pytest.mark.anyio


def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


async def exit_codes(*processes: Any) -> list[int]:
    """Wait for every process (together) and return their exit codes."""

    async def join(process: Any) -> None:
        await anyio.to_thread.run_sync(process.join, 60)

    async with anyio.create_task_group() as tg:
        for process in processes:
            tg.start_soon(join, process)
    codes = [process.exitcode for process in processes]
    assert None not in codes, "a child did not exit"
    return codes


async def state_of(rt: Runtime, run_id: uuid.UUID) -> State:
    run = await rt.read_flow_run(run_id)
    assert run.state is not None
    return run.state


@flow(persist_result=True)
async def persisted() -> dict[str, Any]:
    return {"answer": 42, "items": [1, "two"]}


@flow(result_serializer="msgpack")
async def serialized() -> list[int]:
    return [1, 2, 3]


@flow(result_serializer="msgpack", persist_result=False)
async def serialized_not_persisted() -> list[int]:
    return [4]


@flow
async def unpersisted() -> int:
    return 42


async def test_c130_persisted_results_are_read_back_by_another_runtime(tmp_path: Path) -> None:
    """C130: persisted results come back from the store; a result_serializer implies persisting."""
    assert serialized.persist_result is True and serialized_not_persisted.persist_result is False
    assert unpersisted.with_options(result_serializer="pickle").persist_result is True
    url = store_url(tmp_path)
    async with Runtime(store=url) as rt:  # leaving waits for both runs
        first, second = await rt.submit(persisted), await rt.submit(serialized)
    async with Runtime(store=url) as rt:  # a runtime that never saw the live values
        assert (await state_of(rt, first.id)).data == {"answer": 42, "items": [1, "two"]}
        completed = (await rt.read_states(second.id))[-1]
        assert completed.is_completed() and completed.data == [1, 2, 3]


async def test_c131_an_unpersisted_result_is_only_in_the_process_that_ran_it(
    tmp_path: Path,
) -> None:
    """C131: without persistence the stored Completed state has no data; the caller still does."""
    url = store_url(tmp_path)
    async with Runtime(store=url) as rt:
        h = await rt.submit(unpersisted)
        assert await h.result() == 42
        off = await rt.submit(serialized_not_persisted)
        assert await off.result() == [4]
    async with Runtime(store=url) as rt:
        for run_id in (h.id, off.id):
            state = await state_of(rt, run_id)
            assert state.is_completed() and state.data is None


async def test_c132_subprocess_runs_complete_with_their_persisted_results(tmp_path: Path) -> None:
    """C132: run_flow_in_subprocess exits 0, the run is Completed, its result is in the store."""
    url = store_url(tmp_path)
    plain = run_flow_in_subprocess(long.double, parameters={"x": 21}, store=url)
    with_params = run_flow_in_subprocess(
        outcomes.pair, parameters={"x": 42, "name": "nate"}, store=url
    )
    assert await exit_codes(plain, with_params) == [0, 0]
    async with Runtime(store=url) as rt:
        assert (await state_of(rt, plain.flow_run_id)).data == 42  # type: ignore[attr-defined]
        # Persisted as JSON: the tuple comes back as a list.
        pair = await state_of(rt, with_params.flow_run_id)  # type: ignore[attr-defined]
        assert pair.is_completed() and pair.data == [42, "nate"]


async def test_c133_subprocess_exit_codes_and_outcomes(tmp_path: Path) -> None:
    """C133: failed, crashed and suspended subprocess runs exit 0; a SIGKILLed one -9, Crashed."""
    url = store_url(tmp_path)
    failed = run_flow_in_subprocess(outcomes.raises, store=url)
    crashed = run_flow_in_subprocess(outcomes.interrupted, store=url)
    suspended = run_flow_in_subprocess(outcomes.suspends, store=url)
    killed = run_flow_in_subprocess(long.waits_forever, store=url)
    async with Runtime(store=url) as rt:
        with anyio.fail_after(60):
            while True:  # polling another process's writes: no event to wait on
                try:
                    if (await state_of(rt, killed.flow_run_id)).is_running():  # type: ignore[attr-defined]
                        break
                except LookupError:
                    pass
                await anyio.sleep(0.05)
        os.kill(killed.pid, signal.SIGKILL)  # type: ignore[arg-type]
        assert await exit_codes(failed, crashed, suspended, killed) == [0, 0, 0, -9]
        failed_state = await state_of(rt, failed.flow_run_id)  # type: ignore[attr-defined]
        assert failed_state.is_failed() and "child failed" in (failed_state.message or "")
        crashed_state = await state_of(rt, crashed.flow_run_id)  # type: ignore[attr-defined]
        assert crashed_state.is_crashed() and "Interrupted" in (crashed_state.message or "")
        assert (await state_of(rt, suspended.flow_run_id)).name == "Suspended"  # type: ignore[attr-defined]
    # Its owner's lease has not lapsed yet, but its process is gone: the next Runtime ends it.
    async with Runtime(store=url) as rt:
        assert await names(rt, killed.flow_run_id) == ["Pending", "Running", "Crashed"]  # type: ignore[attr-defined]


async def test_c134_a_subprocess_run_started_in_a_flow_is_its_child(tmp_path: Path) -> None:
    """C134: started inside a flow, a subprocess run is linked to it and has its tags."""
    url = store_url(tmp_path)
    async with Runtime(store=url) as rt:
        parent = await rt.submit(outcomes.starts_a_child, url)
        child_id, code = await parent.result()
        assert code == 0
        child = await rt.read_flow_run(uuid.UUID(child_id))
        assert child.parent_flow_run_id == parent.id
        assert set(child.tags) == {"inner", "outer"}
        assert child.state is not None and set(child.state.data) == {"inner", "outer"}


async def test_c135_env_values_of_none_are_removed_in_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """C135: env keys given None are unset in the child; others are set or inherited."""
    monkeypatch.setenv("FLOWACTOR_TEST_DROPPED", "inherited")
    monkeypatch.setenv("FLOWACTOR_TEST_KEPT", "inherited")
    url = store_url(tmp_path)
    keys = ["FLOWACTOR_TEST_DROPPED", "FLOWACTOR_TEST_KEPT", "FLOWACTOR_TEST_ADDED"]
    env = {"FLOWACTOR_TEST_DROPPED": None, "FLOWACTOR_TEST_ADDED": "given"}
    process = run_flow_in_subprocess(outcomes.env_of, parameters={"keys": keys}, env=env, store=url)
    assert await exit_codes(process) == [0]
    async with Runtime(store=url) as rt:
        seen = (await state_of(rt, process.flow_run_id)).data  # type: ignore[attr-defined]
    assert seen == {
        "FLOWACTOR_TEST_DROPPED": None,
        "FLOWACTOR_TEST_KEPT": "inherited",
        "FLOWACTOR_TEST_ADDED": "given",
    }
