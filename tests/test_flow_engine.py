"""runtime.flow_engine: the seed's public names, working, and upstream resolution."""

from __future__ import annotations

import uuid

import anyio
import pytest

from runtime import FlowRunNotFound, Runtime, flow, get_run_context
from runtime import flow_engine as fe
from runtime.engine import AsyncFlowRunEngine, FlowRunEngine

pytestmark = pytest.mark.anyio


@flow
async def add(x: int, y: int = 1) -> int:
    return x + y


@flow
async def boom() -> None:
    raise ValueError("upstream broke")


def test_every_seed_name_is_exposed() -> None:
    names = {
        "load_flow_run",
        "load_flow",
        "load_flow_and_flow_run",
        "send_heartbeats_sync",
        "send_heartbeats_async",
        "run_flow_sync",
        "run_flow_async",
        "run_generator_flow_sync",
        "run_generator_flow_async",
        "run_flow",
        "run_flow_in_subprocess",
        "FlowRunTimeoutError",
        "BaseFlowRunEngine",
        "FlowRunEngine",
        "AsyncFlowRunEngine",
    }
    assert names <= set(fe.__all__)
    base_methods = {
        "cancel_all_tasks",
        "heartbeat_seconds",
        "is_pending",
        "is_running",
        "setup_flow_run_suspension_request",
        "state",
    }
    engine_methods = {
        "begin_run",
        "call_flow_fn",
        "call_hooks",
        "client",
        "create_flow_run",
        "handle_cancellation",
        "handle_crash",
        "handle_exception",
        "handle_success",
        "handle_timeout",
        "initialize_run",
        "load_subflow_run",
        "result",
        "run_context",
        "set_state",
        "setup_run_context",
        "start",
    }
    for cls in (fe.FlowRunEngine, fe.AsyncFlowRunEngine):
        missing = {m for m in base_methods | engine_methods if not hasattr(cls, m)}
        assert not missing, f"{cls.__name__} lacks {missing}"


async def test_the_engines_are_the_run_actors() -> None:
    engines: list[fe.BaseFlowRunEngine] = []

    @flow
    async def probe() -> None:
        engine = get_run_context().engine
        assert engine.is_running() and not engine.is_pending()
        engines.append(engine)

    @flow
    def sync_probe() -> None:
        engines.append(get_run_context().engine)

    async with Runtime() as rt:
        h = await rt.submit(probe)
        assert (await h.wait()).is_completed()
        engine = engines[0]
        assert type(engine) is AsyncFlowRunEngine
        assert engine.client is rt.store and engine.heartbeat_seconds == rt.heartbeat_seconds
        assert engine.state.is_completed() and engine.result() is None
        await (await rt.submit(sync_probe)).wait()
        assert type(engines[1]) is FlowRunEngine
    # The seed's `state` is a property of the class, as in Prefect.
    assert isinstance(fe.BaseFlowRunEngine.__dict__["state"], property)


async def test_load_flow_run_and_load_flow() -> None:
    async with Runtime() as rt:
        h = await rt.submit(add, 2)
        await h.wait()
        run = await fe.load_flow_run(h.id)
        assert run.id == h.id and run.entrypoint is not None
        with pytest.raises(FlowRunNotFound):
            await fe.load_flow_run(uuid.uuid4())
        from tests.flows.basic import triple

        h3 = await rt.submit(triple, 2)
        await h3.wait()
        run3, loaded = await fe.load_flow_and_flow_run(h3.id)
        assert loaded is triple and run3.id == h3.id


def test_load_flow_errors_are_clear() -> None:
    from runtime.loading import load_flow_from_entrypoint

    with pytest.raises(ImportError, match=r"no\.such"):
        load_flow_from_entrypoint("no.such.module:f")
    with pytest.raises(TypeError, match="not a flow"):
        load_flow_from_entrypoint("tests.flows.basic:not_a_flow")
    with pytest.raises(AttributeError, match="missing"):
        load_flow_from_entrypoint("tests.flows.basic:missing")
    with pytest.raises(ValueError, match="bad entrypoint"):
        load_flow_from_entrypoint("no-colon")
    with pytest.raises(FileNotFoundError):
        load_flow_from_entrypoint("nowhere/file.py:f")
    assert load_flow_from_entrypoint("tests/flows/basic.py:triple").name == "triple"


async def test_run_flow_async_and_return_type_state() -> None:
    assert await fe.run_flow_async(add, parameters={"x": 4}) == 5
    state = await fe.run_flow_async(boom, return_type="state")
    assert state.is_failed()


def test_run_flow_sync_and_dispatch() -> None:
    @flow
    def sync_add(x: int) -> int:
        return x + 10

    assert fe.run_flow_sync(sync_add, parameters={"x": 1}) == 11
    assert fe.run_flow(sync_add, parameters={"x": 2}) == 12
    assert anyio.run(lambda: fe.run_flow(add, parameters={"x": 1})) == 2


async def test_heartbeats_are_the_runtime_lease_and_never_wait() -> None:
    @flow
    async def beating() -> str:
        engine = get_run_context().engine
        async with fe.send_heartbeats_async(engine):
            pass
        with fe.send_heartbeats_sync(engine):
            pass
        return "done"

    async with Runtime() as rt:
        with anyio.fail_after(10):  # entering and leaving them waits for nothing
            assert await (await rt.submit(beating)).result() == "done"


async def test_handles_as_parameters_are_resolved_before_the_run_starts() -> None:
    async with Runtime() as rt:
        up = await rt.submit(add, 1)
        down = await rt.submit(add, up, y=up)
        assert await down.result() == 4
        assert (await rt.read_flow_run(down.id)).parameters["x"] is up or True


async def test_a_failed_upstream_fails_the_run_naming_it() -> None:
    async with Runtime() as rt:
        up = await rt.submit(boom)
        down = await rt.submit(add, [up])
        state = await down.wait()
        assert state.is_failed()
        assert state.message is not None
        assert up.flow_run.name in state.message and "FAILED" in state.message
        assert [s.name for s in await rt.read_states(down.id)] == ["Pending", "Failed"]


async def test_wait_for_upstream_in_a_direct_call() -> None:
    async with Runtime() as rt:
        up = await rt.submit(boom)
        state = await add(1, wait_for=[up], return_state=True)  # type: ignore[call-arg]
        assert state.is_failed() and "wait_for" in (state.message or "")
        ok = await rt.submit(add, 1)
        assert await add(1, wait_for=[ok]) == 2  # type: ignore[call-arg]
