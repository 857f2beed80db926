"""The SQLite writer's fast paths write exactly what the plain ones would.

Multi-row statements are padded with all-NULL rows to a few row counts (so prepared statements
are reused); these tests drive the writer directly with batches whose sizes need padding.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from runtime import Completed, FlowRun, Pending, Running
from runtime.results import encode_parameters, encode_result
from runtime.stores._sqlite_schema import Config, connect_writer
from runtime.stores._sqlite_writer import _COUNTS, _MAX_ROWS, CREATE, SET, Op, Writer, _padded


def _writer(path: Path) -> Writer:
    writer = Writer(Config(str(path)), max_batch=4096)
    writer.conn = connect_writer(writer.config)
    return writer


def _create(run: FlowRun) -> Op:
    item = (run, encode_parameters(run.flow_name, run.parameters), None)
    return Op(CREATE, ([item],), None, None)  # type: ignore[arg-type]


def _set(run_id: uuid.UUID, state: object) -> Op:
    return Op(SET, (run_id, state, False), None, None)  # type: ignore[arg-type]


def _runs(n: int) -> list[FlowRun]:
    owner = uuid.uuid4()
    return [
        FlowRun(name=f"r{i}", flow_name="paths", parameters={"i": i}, state=Pending(), owner=owner)
        for i in range(n)
    ]


def test_padded_counts() -> None:
    assert _COUNTS[0] == 1 and _COUNTS[-1] == _MAX_ROWS
    for count in range(1, _MAX_ROWS + 1):
        padded = _padded(count, _MAX_ROWS)
        assert padded in _COUNTS and count <= padded <= max(2 * count - 1, count)
    assert _padded(50, 42) == 42  # never more rows than one statement may carry


@pytest.mark.parametrize("size", [5, 7, 13, 100])
def test_padded_batches_write_exactly_their_rows(tmp_path: Path, size: int) -> None:
    writer = _writer(tmp_path / "runs.db")
    runs = _runs(size)
    creates = [_create(run) for run in runs]
    writer._commit(creates)
    assert [op.error for op in creates] == [None] * size

    # One duplicate (already in the file) among new runs: only its caller gets the error.
    fresh = _runs(size)
    batch = [_create(runs[0]), *(_create(run) for run in fresh)]
    batch += [_set(run.id, Running()) for run in runs]
    writer._commit(batch)
    assert isinstance(batch[0].error, ValueError)
    assert [op.error for op in batch[1:]] == [None] * (len(batch) - 1)

    result = encode_result(42, "json")
    done = [_set(run.id, Completed(data=result)) for run in runs]
    writer._commit(done)
    assert [op.error for op in done] == [None] * size

    assert writer.conn is not None
    writer.conn.close()
    conn = sqlite3.connect(tmp_path / "runs.db")
    try:
        assert conn.execute("SELECT count(*) FROM flow_runs").fetchone()[0] == 2 * size
        assert conn.execute("SELECT count(*) FROM flow_runs WHERE num IS NULL").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM flow_run_states").fetchone()[0] == 4 * size
        rows = conn.execute("SELECT state_type, count(*) FROM flow_runs GROUP BY 1").fetchall()
        assert sorted(rows) == [("COMPLETED", size), ("PENDING", size)]
        results = conn.execute("SELECT seq, serializer, payload FROM flow_run_results").fetchall()
        assert results == [(3, "json", result.payload)] * size
    finally:
        conn.close()
