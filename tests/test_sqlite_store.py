"""The SQLite store keeps the memory store's semantics, durably, and is the default store."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime import (
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    FlowRun,
    FlowRunNotFound,
    MemoryStore,
    Paused,
    Pending,
    Running,
    Runtime,
    Scheduled,
    SQLiteStore,
    State,
    StateType,
    StoreError,
    flow,
    open_store,
)
from runtime._defaults import default_store
from runtime.policy import Decision
from runtime.states import StateDetails, now
from runtime.stores import Store
from runtime.stores.sqlite import parse_sqlite_url

pytestmark = pytest.mark.anyio


def _run(name: str, **fields: Any) -> FlowRun:
    fields.setdefault("state", Pending())
    return FlowRun(name=name, flow_name="parity", **fields)


async def _script(store: Store) -> list[Any]:
    """Every kind of policy answer, through `store`; returns what can be compared."""
    seen: list[Any] = []

    def note(d: Decision) -> None:
        run = d.run
        seen.append(
            (
                d.status,
                d.state.type,
                d.state.name,
                d.reason,
                round(d.delay),
                None
                if run is None
                else (run.run_count, run.start_time is None, run.end_time is None),
            )
        )

    a = await store.create_flow_run(_run("a", retries=1, tags=("x", "y")))
    for state, force in [
        (Running(), False),
        (Failed(message="first"), False),  # retries left: AwaitingRetry
        (Running(), False),
        (Completed(), False),
        (Running(), False),  # final is final
        (Crashed(), False),  # aborted
        (Failed(message="forced"), True),
    ]:
        note(await store.set_state(a.id, state, force=force))
    b = await store.create_flow_run(_run("b"))
    for state in (Running(), Cancelling(), Running(), Cancelled()):
        note(await store.set_state(b.id, state))
    c = await store.create_flow_run(_run("c"))
    for state in (
        Running(),
        Paused(pause_key="k"),
        Running(),
        Paused(pause_key="k"),  # this pause already fired
        Running(),  # Running to Running
        Pending(),  # never back to Pending
        Completed(),
    ):
        note(await store.set_state(c.id, state))
    d = await store.create_flow_run(
        _run("d", state=Scheduled(scheduled_time=now() + timedelta(hours=1)))
    )
    note(await store.set_state(d.id, Running()))  # WAIT about an hour
    tid = uuid.uuid4()
    note(await store.set_state(d.id, Cancelled(details=StateDetails(transition_id=tid))))
    note(await store.set_state(d.id, Cancelled(details=StateDetails(transition_id=tid))))

    for run in (a, b, c, d):
        stored = await store.read_flow_run(run.id)
        history = await store.read_states(run.id)
        seen.append((stored.name, stored.run_count, stored.tags, stored.pause_keys))
        seen.append([s.name for s in history])
        assert stored.state is not None and stored.state.timestamp == history[-1].timestamp
        assert all(x.timestamp < y.timestamp for x, y in itertools.pairwise(history))
    with pytest.raises(FlowRunNotFound):
        await store.set_state(uuid.uuid4(), Running())
    with pytest.raises(FlowRunNotFound):
        await store.read_states(uuid.uuid4())
    with pytest.raises(ValueError, match="already exists"):
        await store.create_flow_run(_run("again", id=a.id))
    listed = await store.list_flow_runs(state=[StateType.FAILED, StateType.CANCELLED])
    seen.append([r.name for r in listed])
    seen.append([r.name for r in await store.list_flow_runs(flow_name="parity", limit=2)])
    seen.append(len(await store.list_flow_runs(state=StateType.RUNNING)))
    return seen


async def test_same_decisions_as_the_memory_store(tmp_path: Path) -> None:
    memory = await _script(MemoryStore())
    store = SQLiteStore(tmp_path / "runs.db")
    await store.open()
    try:
        sqlite = await _script(store)
    finally:
        await store.close()
    assert len(memory) >= 25 and sqlite == memory


async def test_runs_survive_reopening_with_every_field(tmp_path: Path) -> None:
    parent = uuid.uuid4()
    run = FlowRun(
        name="full",
        flow_name="fields",
        flow_version="1.2",
        parameters={"n": 3, "names": ["a", "b"], "nested": {"k": None}},
        state=Pending(),
        parent_flow_run_id=parent,
        tags=("t1", "t2"),
        retries=2,
        retry_delay_seconds=(0.5, 1.5),
        entrypoint="pkg.mod:fn",
        owner=uuid.uuid4(),
    )
    store = SQLiteStore(tmp_path / "runs.db")
    await store.open()
    created = await store.create_flow_run(run)
    running = (await store.set_state(run.id, Running())).run
    await store.close()

    reopened = SQLiteStore(tmp_path / "runs.db")
    stored = await reopened.read_flow_run(run.id)  # reads work on a store never opened
    assert stored == running
    assert stored.created == created.created and stored.start_time is not None
    assert stored.retry_delay_seconds == (0.5, 1.5)
    assert [s.name for s in await reopened.read_states(run.id)] == ["Pending", "Running"]


async def test_another_connection_s_commit_is_seen_by_the_writer(tmp_path: Path) -> None:
    """The writer caches runs in flight; a commit by another process must invalidate that."""
    ours, theirs = SQLiteStore(tmp_path / "runs.db"), SQLiteStore(tmp_path / "runs.db")
    await ours.open()
    await theirs.open()
    try:
        run = await ours.create_flow_run(_run("shared"))
        await ours.set_state(run.id, Running())
        assert (await theirs.set_state(run.id, Crashed(message="by them"))).accepted
        late = await ours.set_state(run.id, Completed())
        assert not late.accepted and late.state.is_crashed()
        names = [s.name for s in await ours.read_states(run.id)]
        assert names == ["Pending", "Running", "Crashed"]
    finally:
        await ours.close()
        await theirs.close()


async def test_group_commit_answers_each_caller_its_own_way(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    await store.open()
    try:
        runs = [await store.create_flow_run(_run(f"g{i}")) for i in range(500)]
        answers: dict[str, Any] = {}

        async def propose(key: str, run_id: uuid.UUID, state: State) -> None:
            try:
                answers[key] = await store.set_state(run_id, state)
            except Exception as exc:
                answers[key] = exc

        async def duplicate() -> None:
            try:
                await store.create_flow_run(_run("dup", id=runs[0].id))
            except ValueError as exc:
                answers["dup"] = exc

        async with anyio.create_task_group() as tg:
            for i, run in enumerate(runs):
                tg.start_soon(propose, str(i), run.id, Running())
            tg.start_soon(propose, "missing", uuid.uuid4(), Running())
            tg.start_soon(duplicate)
        assert isinstance(answers.pop("missing"), FlowRunNotFound)
        assert isinstance(answers.pop("dup"), ValueError)
        assert all(isinstance(d, Decision) and d.accepted for d in answers.values())
        assert len(await store.list_flow_runs(state=StateType.RUNNING)) == 500
    finally:
        await store.close()


async def test_open_and_close_are_counted_and_writes_need_an_open_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    with pytest.raises(StoreError, match="not open"):
        await store.create_flow_run(_run("early"))
    await store.open()
    await store.open()
    await store.close()
    run = await store.create_flow_run(_run("still open"))  # one open left
    await store.close()
    await store.close()  # extra closes are harmless
    with pytest.raises(StoreError, match="not open"):
        await store.set_state(run.id, Running())
    assert (await store.read_flow_run(run.id)).name == "still open"


def test_urls() -> None:
    assert parse_sqlite_url("sqlite:///runs.db") == ("runs.db", {})
    assert parse_sqlite_url("sqlite:////abs/runs.db") == ("/abs/runs.db", {})
    path, options = parse_sqlite_url("sqlite:////a%20b/x.db?synchronous=FULL&busy_timeout=2.5")
    assert path == "/a b/x.db"
    assert options == {"synchronous": "full", "busy_timeout": 2.5}
    assert parse_sqlite_url("sqlite:///x.db?mode=ro")[1] == {"read_only": True}
    with pytest.raises(ValueError, match="unknown option"):
        parse_sqlite_url("sqlite:///x.db?fsync=always")
    with pytest.raises(ValueError, match="names no file"):
        parse_sqlite_url("sqlite:///")
    with pytest.raises(ValueError, match="synchronous must be one of"):
        open_store("sqlite:///x.db?synchronous=sometimes")
    store = open_store("sqlite:////tmp/x.db?synchronous=full")
    assert isinstance(store, SQLiteStore) and "synchronous='full'" in repr(store)
    assert store.url == "sqlite:////tmp/x.db?synchronous=full"


async def test_synchronous_full_works(tmp_path: Path) -> None:
    @flow
    async def one() -> int:
        return 1

    async with Runtime(store=f"sqlite:///{tmp_path / 'runs.db'}?synchronous=full") as rt:
        assert await (await rt.submit(one)).result() == 1


@pytest.fixture
def default_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real default: no FLOWACTOR_STORE, a home that does not exist yet."""
    home = tmp_path / "home" / ".flowactor"
    monkeypatch.setenv("FLOWACTOR_HOME", str(home))
    monkeypatch.delenv("FLOWACTOR_STORE", raising=False)
    return home


@flow
async def double(x: int) -> int:
    return 2 * x


async def test_the_default_store_is_sqlite_in_flowactor_home(default_home: Path) -> None:
    async with Runtime() as rt:
        assert isinstance(rt.store, SQLiteStore)
        assert Path(rt.store.path) == default_home / "runs.db"
        h = await rt.submit(double, 2)
        assert await h.result() == 4
    assert await anyio.Path(default_home / "runs.db").exists()
    # Direct calls outside a Runtime record into the same default store.
    assert await double(5) == 10
    runs = await default_store().list_flow_runs(flow_name="double")
    assert sorted(r.parameters["x"] for r in runs) == [2, 5]


async def test_flowactor_store_overrides_the_default(
    default_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("FLOWACTOR_STORE", f"sqlite:///{other}")
    async with Runtime() as rt:
        assert await (await rt.submit(double, 1)).result() == 2
    assert await anyio.Path(other).exists()
    assert not await anyio.Path(default_home).exists()
    monkeypatch.setenv("FLOWACTOR_STORE", "memory://")
    assert isinstance(Runtime().store, MemoryStore)
