"""Many concurrent runs on one SQLite file: group commit loses and reorders nothing."""

from __future__ import annotations

import contextlib
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from runtime import Runtime, State, StateType, flow
from runtime.stores import SQLiteStore
from runtime.stores._sqlite_writer import CREATE

pytestmark = pytest.mark.anyio


async def test_ten_thousand_concurrent_runs_have_every_transition_in_order(
    tmp_path: Path,
) -> None:
    n = 10_000
    db = tmp_path / "runs.db"

    @flow
    async def trivial(i: int) -> int:
        return i

    handles = []

    async def submit_every(numbers: range) -> None:
        for i in numbers:
            handles.append(await rt.submit(trivial, i))

    async with Runtime(store=f"sqlite:///{db}") as rt:
        async with anyio.create_task_group() as tg:
            for part in range(50):  # 50 submitters: their writes share transactions
                tg.start_soon(submit_every, range(part, n, 50))
        results = [await h.result() for h in handles]
        assert sorted(results) == list(range(n))
        completed = await rt.list_flow_runs(state=StateType.COMPLETED, flow_name="trivial")
        assert len(completed) == n

    # The history table itself: three rows per run, numbered 1..3, in time order.
    decode = msgspec.json.Decoder(State).decode
    histories: dict[str, list[tuple[int, State]]] = defaultdict(list)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT r.id, s.seq, s.state FROM flow_run_states s "
            "JOIN flow_runs r ON r.num = s.run_num ORDER BY s.run_num, s.seq"
        )
        for run_id, seq, blob in rows:
            histories[run_id].append((seq, decode(blob)))
    assert set(histories) == {str(h.id) for h in handles}
    for history in histories.values():
        assert [seq for seq, _ in history] == [1, 2, 3]
        states = [state for _, state in history]
        assert [s.name for s in states] == ["Pending", "Running", "Completed"]
        assert states[0].timestamp < states[1].timestamp < states[2].timestamp


class _CountingCreates(SQLiteStore):
    """Counts the new runs queued for their first commit at the same time."""

    def __init__(self, path: Path, *, max_batch: int) -> None:
        super().__init__(path, max_batch=max_batch)
        self.in_flight = 0
        self.most = 0

    async def _write(self, kind: int, *args: Any) -> Any:
        if kind != CREATE:
            return await super()._write(kind, *args)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            return await super()._write(kind, *args)
        finally:
            self.in_flight -= 1


async def test_a_flood_of_submits_queues_at_most_two_batches_of_new_runs(tmp_path: Path) -> None:
    """Admission control: the writer's backlog of new runs stays short, and nothing is lost."""

    @flow
    async def trivial(i: int) -> int:
        return i

    store = _CountingCreates(tmp_path / "runs.db", max_batch=8)
    handles = []

    async def submit(i: int) -> None:
        handles.append(await rt.submit(trivial, i))

    async with Runtime(store=store) as rt:
        async with anyio.create_task_group() as tg:
            for i in range(300):  # all at once
                tg.start_soon(submit, i)
        assert sorted([await h.result() for h in handles]) == list(range(300))
    assert 8 < store.most <= 16  # the limit was reached, and held
