"""Rows <-> FlowRun and State for the SQLite store, and its read queries.

States are msgspec JSON. What a state's `data` becomes in the file: an exception is recorded
as its type name and message (read back as `StoredError`); a persisted result is a marker in
the state plus a row in `flow_run_results` (read back decoded); anything else is not stored.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec

from ..errors import FlowRunNotFound, StoredError
from ..models import FlowRun
from ..results import PersistedResult, decode_parameters, decode_result, error_info
from ..states import State, StateType

__all__ = [
    "EXISTING_RUNS",
    "INSERT_RESULT",
    "INSERT_RUN",
    "INSERT_STATE",
    "LAST_RUN_NUM",
    "SELECT_RUN",
    "UPDATE_RUN",
    "UPDATE_RUNS",
    "encode_state",
    "insert_row",
    "list_runs",
    "read_run",
    "read_states",
    "run_from_row",
    "update_row",
]

_COLUMNS = (
    "r.id, r.name, r.flow_name, r.flow_version, r.parameters, r.state_type, r.state_seq, "
    "r.state, r.run_count, r.parent_id, r.tags, r.created, r.start_time, r.end_time, r.owner, "
    "r.retries, r.retry_delay, r.entrypoint, r.pause_keys, r.resuming, "
    "res.serializer, res.payload, r.num"
)
SELECT_RUN = (
    f"SELECT {_COLUMNS} FROM flow_runs r LEFT JOIN flow_run_results res "
    "ON res.run_num = r.num AND res.seq = r.state_seq"
)
# Multi-row statements: `{rows}` becomes `(?, ...), (?, ...), ...`. Few statements per batch
# matter more than anything: every SQLite call releases the GIL, and getting it back from a
# busy event loop thread can take a whole switch interval (5 ms). The writer pads the rows to
# one of a few counts with all-NULL rows, so that it reuses prepared statements (preparing a
# statement of 50 rows costs more than running it); each statement skips those rows: the
# inserts by their NULL key column, the update because `num = NULL` matches no row.
INSERT_RUN = (
    "INSERT INTO flow_runs (id, name, flow_name, flow_version, parameters, state_type, "
    "state_seq, state, run_count, parent_id, tags, created, start_time, end_time, owner, "
    "retries, retry_delay, entrypoint, pause_keys, resuming, num) "
    "SELECT * FROM (VALUES {rows}) WHERE column21 IS NOT NULL"
)
UPDATE_RUNS = (  # UPDATE ... FROM needs SQLite 3.33; older ones use UPDATE_RUN per row
    "UPDATE flow_runs SET state_type = v.column1, state_seq = v.column2, state = v.column3, "
    "run_count = v.column4, start_time = v.column5, end_time = v.column6, owner = v.column7, "
    "pause_keys = v.column8, resuming = v.column9 FROM (VALUES {rows}) AS v "
    "WHERE flow_runs.num = v.column10"
)
UPDATE_RUN = (
    "UPDATE flow_runs SET state_type = ?, state_seq = ?, state = ?, run_count = ?, "
    "start_time = ?, end_time = ?, owner = ?, pause_keys = ?, resuming = ? WHERE num = ?"
)
INSERT_STATE = (
    "INSERT INTO flow_run_states (run_num, seq, state) "
    "SELECT * FROM (VALUES {rows}) WHERE column1 IS NOT NULL"
)
INSERT_RESULT = (
    "INSERT OR REPLACE INTO flow_run_results (run_num, seq, serializer, payload) "
    "SELECT * FROM (VALUES {rows}) WHERE column1 IS NOT NULL"
)
LAST_RUN_NUM = "SELECT coalesce(max(num), 0) FROM flow_runs"
EXISTING_RUNS = "SELECT id FROM flow_runs WHERE id IN ({rows})"  # padded with NULLs too

_encode = msgspec.json.Encoder().encode
_decode_state = msgspec.json.Decoder(State).decode
_decode_strings = msgspec.json.Decoder(tuple[str, ...]).decode
_decode_delay = msgspec.json.Decoder(float | tuple[float, ...]).decode


# -- writing ------------------------------------------------------------------------------
def encode_state(state: State, result: PersistedResult | None = None) -> bytes:
    """The state as stored; its data only as an error record or a persisted-result marker."""
    data = state.data
    marker: Any = None
    if result is not None:
        marker = {"result": result.serializer}
    elif isinstance(data, BaseException):
        type_name, message = error_info(data)
        marker = {"error": {"type": type_name, "message": message}}
    if data is not marker:
        state = msgspec.structs.replace(state, data=marker)
    return _encode(state)


def insert_row(
    num: int, run: FlowRun, seq: int, state: bytes, parameters: bytes
) -> tuple[Any, ...]:
    return (
        str(run.id),
        run.name,
        run.flow_name,
        run.flow_version,
        parameters,
        None if run.state is None else run.state.type.value,
        seq,
        state,
        run.run_count,
        _text(run.parent_flow_run_id),
        _encode(run.tags),
        run.created.isoformat(),
        _iso(run.start_time),
        _iso(run.end_time),
        _owner_text(run.owner),
        run.retries,
        _encode(run.retry_delay_seconds),
        run.entrypoint,
        _encode(run.pause_keys),
        int(run.resuming),
        num,
    )


def update_row(num: int, run: FlowRun, seq: int, state: bytes) -> tuple[Any, ...]:
    return (
        None if run.state is None else run.state.type.value,
        seq,
        state,
        run.run_count,
        _iso(run.start_time),
        _iso(run.end_time),
        _owner_text(run.owner),
        _encode(run.pause_keys),
        int(run.resuming),
        num,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


# Every row written names its owner, and a process has one or a few: str(UUID) costs ~1 us,
# the dict look-up a fifth of that. Writer threads of several stores may share it: each dict
# operation is atomic, and a race at worst makes the same string twice.
_owner_texts: dict[uuid.UUID, str] = {}


def _owner_text(owner: uuid.UUID | None) -> str | None:
    if owner is None:
        return None
    text = _owner_texts.get(owner)
    if text is None:
        if len(_owner_texts) >= 64:
            _owner_texts.clear()
        text = _owner_texts[owner] = str(owner)
    return text


# -- reading ------------------------------------------------------------------------------
def decode_state(blob: bytes, serializer: str | None, payload: bytes | None) -> State:
    state = _decode_state(blob)
    data = state.data
    if isinstance(data, dict):
        if "error" in data:
            error = data["error"]
            state.data = StoredError(str(error.get("type", "")), str(error.get("message", "")))
        elif "result" in data:
            state.data = None if payload is None else decode_result(str(serializer), payload)
    return state


def run_from_row(row: tuple[Any, ...]) -> FlowRun:
    state = None if row[7] is None else decode_state(row[7], row[20], row[21])
    return FlowRun(
        id=uuid.UUID(row[0]),
        name=row[1],
        flow_name=row[2],
        flow_version=row[3],
        parameters=decode_parameters(row[4]),
        state=state,
        run_count=row[8],
        parent_flow_run_id=None if row[9] is None else uuid.UUID(row[9]),
        tags=_decode_strings(row[10]),
        created=datetime.fromisoformat(row[11]),
        start_time=None if row[12] is None else datetime.fromisoformat(row[12]),
        end_time=None if row[13] is None else datetime.fromisoformat(row[13]),
        owner=None if row[14] is None else uuid.UUID(row[14]),
        retries=row[15],
        retry_delay_seconds=_decode_delay(row[16]),
        entrypoint=row[17],
        pause_keys=_decode_strings(row[18]),
        resuming=bool(row[19]),
    )


def read_run(conn: sqlite3.Connection, run_id: uuid.UUID) -> FlowRun:
    row = conn.execute(SELECT_RUN + " WHERE r.id = ?", (str(run_id),)).fetchone()
    if row is None:
        raise FlowRunNotFound(run_id)
    return run_from_row(row)


def read_states(conn: sqlite3.Connection, run_id: uuid.UUID) -> list[State]:
    key = str(run_id)
    rows = conn.execute(
        "SELECT s.state, res.serializer, res.payload FROM flow_runs r "
        "JOIN flow_run_states s ON s.run_num = r.num "
        "LEFT JOIN flow_run_results res ON res.run_num = s.run_num AND res.seq = s.seq "
        "WHERE r.id = ? ORDER BY s.seq",
        (key,),
    ).fetchall()
    if not rows and conn.execute("SELECT 1 FROM flow_runs WHERE id = ?", (key,)).fetchone() is None:
        raise FlowRunNotFound(run_id)
    return [decode_state(blob, serializer, payload) for blob, serializer, payload in rows]


def list_runs(
    conn: sqlite3.Connection,
    states: Iterable[StateType] | None,
    flow_name: str | None,
    limit: int | None,
) -> list[FlowRun]:
    where: list[str] = []
    params: list[Any] = []
    if states is not None:
        wanted = sorted(s.value for s in states)
        if not wanted:
            return []
        where.append(f"r.state_type IN ({', '.join('?' * len(wanted))})")
        params.extend(wanted)
    if flow_name is not None:
        where.append("r.flow_name = ?")
        params.append(flow_name)
    sql = SELECT_RUN
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY r.num"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(max(limit, 0))
    return [run_from_row(row) for row in conn.execute(sql, params)]
