"""The memory and SQLite stores read back the same thing: what a durable store can keep.

In the process that ran a run, its handle answers with the live values (`result()`, `wait()`);
what is read from the store (`read_flow_run`, `read_states`, `list_flow_runs`) is what a new
process would read: a return value only if persisted (decoded), an exception as a StoredError,
parameters as JSON gives them back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime import (
    FlowRun,
    ParameterEncodeError,
    Pending,
    Runtime,
    StoredError,
    flow,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'runs.db'}"


@flow
async def five() -> int:
    return 5


@flow(persist_result=True)
async def pair() -> tuple[int, str]:
    return (1, "two")


@flow(persist_result=True, result_serializer="pickle")
async def pickled() -> frozenset[int]:
    return frozenset({1, 2})


@flow
async def fails() -> None:
    raise ValueError("bad input")


@flow
async def echo(x: Any) -> Any:
    return x


async def _last(rt: Runtime, run_id: Any) -> Any:
    """The data of the run's current state, as read from the store (both ways agree)."""
    run = await rt.read_flow_run(run_id)
    states = await rt.read_states(run_id)
    assert run.state is not None
    assert (states[-1].name, states[-1].timestamp) == (run.state.name, run.state.timestamp)
    assert type(states[-1].data) is type(run.state.data)
    return run.state.data


async def test_a_result_that_is_not_persisted_is_not_in_the_store(url: str) -> None:
    async with Runtime(store=url) as rt:
        h = await rt.submit(five)
        assert await h.result() == 5
        assert (await h.wait()).data == 5  # the live state, in the process that ran it
        assert await _last(rt, h.id) is None
        [listed] = await rt.list_flow_runs(flow_name="five")
        assert listed.state is not None and listed.state.data is None


async def test_a_persisted_result_is_read_back_decoded(url: str) -> None:
    async with Runtime(store=url) as rt:
        h = await rt.submit(pair)
        assert await h.result() == (1, "two")  # the live value
        assert await _last(rt, h.id) == [1, "two"]  # as JSON keeps it
        p = await rt.submit(pickled)
        await p.wait()
        assert await _last(rt, p.id) == frozenset({1, 2})


async def test_an_exception_is_stored_as_its_type_and_message(url: str) -> None:
    async with Runtime(store=url) as rt:
        h = await rt.submit(fails)
        with pytest.raises(ValueError, match="bad input"):  # the live exception
            await h.result()
        stored = await _last(rt, h.id)
        assert isinstance(stored, StoredError)
        assert (stored.type_name, stored.message) == ("ValueError", "bad input")


async def test_parameters_are_read_back_as_json_gives_them(url: str) -> None:
    async with Runtime(store=url) as rt:
        h = await rt.submit(echo, (1, 2))
        assert await h.result() == (1, 2)  # the flow got the live value
        run = await rt.read_flow_run(h.id)
        assert run.parameters == {"x": [1, 2]}
        # A handle passed as a parameter is resolved for the flow, and stored as the id of
        # the run it stands for.
        downstream = await rt.submit(echo, h)
        assert await downstream.result() == (1, 2)
        stored = (await rt.read_flow_run(downstream.id)).parameters
        assert stored == {"x": {"upstream_flow_run_id": str(h.id)}}


async def test_a_parameter_json_cannot_hold_is_refused_by_sqlite_and_kept_by_memory(
    url: str,
) -> None:
    """The one documented difference: a durable store cannot keep such a run; the memory store
    keeps the live object (throwaway runs may pass clients, locks, ...)."""
    event = anyio.Event()
    async with Runtime(store=url) as rt:
        if url.startswith("sqlite"):
            with pytest.raises(ParameterEncodeError, match="'x'"):
                await rt.submit(echo, event)
            assert await rt.list_flow_runs(flow_name="echo") == []
        else:
            h = await rt.submit(echo, event)
            assert await h.result() is event
            assert (await rt.read_flow_run(h.id)).parameters == {"x": event}


async def test_the_run_the_store_returns_on_create_keeps_the_live_parameters(url: str) -> None:
    """`create_flow_run` answers with the run as given (live values), as `set_state` answers
    with the live state; only what is read later is the stored form."""
    async with Runtime(store=url) as rt:
        created = await rt.store.create_flow_run(
            FlowRun(name="r", flow_name="direct", parameters={"x": (1, 2)}, state=Pending())
        )
        assert created.parameters == {"x": (1, 2)}
        assert (await rt.read_flow_run(created.id)).parameters == {"x": [1, 2]}
