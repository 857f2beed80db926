"""Persisted results and what a store keeps of parameters and exceptions."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import anyio
import pytest

from runtime import (
    Flow,
    ParameterEncodeError,
    ResultEncodeError,
    Runtime,
    SQLiteStore,
    StoredError,
    flow,
)
from tests._children import CHILD

pytestmark = pytest.mark.anyio


async def test_results_persisted_by_another_process_read_back_decoded(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    done = await anyio.run_process([sys.executable, str(CHILD), "results", str(db)])
    ids = dict(line.split("=") for line in done.stdout.decode().split())
    async with Runtime(store=f"sqlite:///{db}") as rt:
        expected = {
            "as-json": {"answer": 42, "items": [1, 2.5, "three", None], "nested": {"ok": True}},
            "as-msgpack": [b"\x00\x01bytes", 7, "text"],
            "as-pickle": {"complex": complex(1, 2), "frozen": frozenset({1, 2})},
        }
        for name, value in expected.items():
            states = await rt.read_states(ids[name])  # type: ignore[arg-type]
            assert [s.name for s in states] == ["Pending", "Running", "Completed"]
            assert states[-1].data == value
            run = await rt.read_flow_run(ids[name])  # type: ignore[arg-type]
            assert run.state is not None and run.state.data == value


async def test_the_writing_process_keeps_its_own_value(tmp_path: Path) -> None:
    @flow(persist_result=True, result_serializer="pickle")
    async def gives() -> object:
        return threading.Lock  # picklable by reference; identity kept in this process

    @flow(persist_result=True)
    async def plain() -> list[int]:
        return [1, 2, 3]

    async with Runtime(store=f"sqlite:///{tmp_path / 'runs.db'}") as rt:
        h = await rt.submit(gives)
        assert await h.result() is threading.Lock
        assert (await h.wait()).data is threading.Lock
        h2 = await rt.submit(plain)
        assert await h2.result() == [1, 2, 3]
        assert (await rt.read_states(h2.id))[-1].data == [1, 2, 3]


async def test_an_unencodable_result_fails_the_run_with_a_clear_message(tmp_path: Path) -> None:
    @flow(persist_result=True)
    async def returns_a_lock() -> object:
        return threading.Lock()

    @flow
    async def fine() -> int:
        return 1

    async with Runtime(store=f"sqlite:///{tmp_path / 'runs.db'}") as rt:
        h = await rt.submit(returns_a_lock)
        state = await h.wait()
        assert state.is_failed()
        assert state.message is not None
        assert "_thread.lock" in state.message and "'json' result serializer" in state.message
        with pytest.raises(ResultEncodeError, match=r"_thread\.lock"):
            await h.result()
        # Stored as type name + message, read back as a StoredError.
        stored = (await rt.read_states(h.id))[-1]
        assert isinstance(stored.data, StoredError)
        assert stored.data.type_name == "runtime.errors.ResultEncodeError"
        # The runtime goes on.
        assert await (await rt.submit(fine)).result() == 1


async def test_unencodable_parameters_are_refused_at_submit(tmp_path: Path) -> None:
    @flow
    async def takes(callback: object, n: int = 1) -> None:
        pass

    async with Runtime(store=f"sqlite:///{tmp_path / 'runs.db'}") as rt:
        with pytest.raises(ParameterEncodeError) as caught:
            await rt.submit(takes, lambda: None, n=2)
        assert caught.value.parameter == "callback"
        assert caught.value.type_name == "function"
        assert "'callback'" in str(caught.value) and "'function'" in str(caught.value)
        assert await rt.list_flow_runs() == []


async def test_exceptions_are_kept_as_type_and_message(tmp_path: Path) -> None:
    class Boom(ValueError):
        pass

    @flow
    async def fails() -> None:
        raise Boom("it broke")

    async with Runtime(store=f"sqlite:///{tmp_path / 'runs.db'}") as rt:
        h = await rt.submit(fails)
        with pytest.raises(Boom):  # the live exception, in this process
            await h.result()
        assert isinstance((await h.wait()).data, Boom)
    store = SQLiteStore(tmp_path / "runs.db")  # a store that never saw the live object
    failed = (await store.read_states(h.id))[-1]
    assert isinstance(failed.data, StoredError)
    assert failed.data.type_name.endswith("Boom") and failed.data.message == "it broke"
    assert str(failed.data).endswith("Boom: it broke")


def test_result_serializer_is_validated() -> None:
    with pytest.raises(ValueError, match="result_serializer"):
        flow(result_serializer="yaml")(lambda: None)  # type: ignore[call-overload]
    f: Flow[[], None] = flow(result_serializer="msgpack")(lambda: None)
    assert f.result_serializer == "msgpack"
    assert f.with_options(result_serializer="pickle").result_serializer == "pickle"
