"""The SQLite store's owners: registering and renewing leases, and recovering orphans.

Reads (`read_owners`, `find_orphans`) run on a read connection; the writes run in the writer
thread inside its transaction (each takes the `Writer` as its last argument), where every
decision is checked again against what is committed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable

import msgspec

from ..errors import FlowRunNotFound
from ..models import FlowRun, Owner
from ..policy import Decision
from ..states import now
from . import _sqlite_codec as codec
from ._liveness import stopped_because
from ._recovery import is_orphan_candidate, recover
from ._sqlite_schema import UNFINISHED_SQL
from ._sqlite_writer import Writer

__all__ = [
    "CancelWatch",
    "claim",
    "find_orphans",
    "read_owners",
    "recover_planned",
    "release_owner",
    "runs_owned_by",
    "upsert_owner",
]

Plan = list[tuple[uuid.UUID, uuid.UUID | None, bool]]  # (run, its owner, retry it?)

_OWNER_COLUMNS = "id, pid, hostname, lease_expires, start_time, boot_id, pid_ns"


# -- reads ----------------------------------------------------------------------------------
def read_owners(conn: sqlite3.Connection) -> dict[uuid.UUID, Owner]:
    rows = conn.execute(f"SELECT {_OWNER_COLUMNS} FROM owners").fetchall()
    return {
        uuid.UUID(i): Owner(
            id=uuid.UUID(i),
            pid=pid,
            hostname=host,
            lease_expires=expires,
            start_time=start,
            boot_id=boot,
            pid_ns=ns,
        )
        for i, pid, host, expires, start, boot, ns in rows
    }


def find_orphans(
    conn: sqlite3.Connection,
    at: float,
    full: bool,
    caller: uuid.UUID | None,
    only: Iterable[uuid.UUID] | None = None,
) -> tuple[list[FlowRun], list[uuid.UUID]]:
    """(orphan candidates, stopped owners) as of `at`.

    The owners table is small (one row per live Runtime): which of them stopped is worked out
    here, then only their unfinished runs are read, through the index of unfinished runs.
    `full` also reads the unfinished runs whose owner has no record at all (a full scan of
    that index: done when a Runtime opens, not by the periodic sweeps). `only` limits it all to
    those runs.
    """
    stopped = [
        owner_id
        for owner_id, owner in read_owners(conn).items()
        if owner_id != caller and stopped_because(owner, at) is not None
    ]
    if not stopped and not full:
        return [], stopped
    keys = [str(owner_id) for owner_id in stopped]
    marks = ", ".join("?" * len(keys))
    if full:
        # Through the index of unfinished runs, not a scan of every run ever recorded.
        select = codec.SELECT_RUN.replace(
            "flow_runs r", "flow_runs r INDEXED BY flow_runs_unfinished"
        )
        sql = (
            f"{select} LEFT JOIN owners o ON o.id = r.owner "
            f"WHERE r.owner IS NOT NULL AND r.state_type IN {UNFINISHED_SQL} "
            f"AND (o.id IS NULL{f' OR r.owner IN ({marks})' if keys else ''}) ORDER BY r.num"
        )
    else:
        sql = (
            f"{codec.SELECT_RUN} WHERE r.owner IN ({marks}) "
            f"AND r.state_type IN {UNFINISHED_SQL} ORDER BY r.num"
        )
    params: list[str] = list(keys)
    if only is not None:
        wanted = [str(run_id) for run_id in only]
        where = f"WHERE r.id IN ({', '.join('?' * len(wanted))}) AND "
        sql = sql.replace("WHERE ", where, 1)
        params = wanted + params
    runs = [codec.run_from_row(row) for row in conn.execute(sql, params)]
    return [run for run in runs if is_orphan_candidate(run) and run.owner != caller], stopped


def runs_owned_by(conn: sqlite3.Connection, owner_id: uuid.UUID) -> set[uuid.UUID]:
    sql = f"SELECT id FROM flow_runs WHERE owner = ? AND state_type IN {UNFINISHED_SQL}"
    return {uuid.UUID(row[0]) for row in conn.execute(sql, (str(owner_id),))}


class CancelWatch:
    """Answers `cancel_requests` from one read connection of its own, querying only when the
    file has changed since it last did for that owner (`PRAGMA data_version`, which moves with
    every commit made by another connection), so an idle store costs one pragma per poll."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        close: Callable[[sqlite3.Connection], None],
    ) -> None:
        self._connect = connect
        self._close = close
        self._lock = threading.Lock()  # polls come from worker threads; one at a time
        self._conn: sqlite3.Connection | None = None
        self._seen: dict[uuid.UUID, tuple[int, dict[uuid.UUID, str | None]]] = {}

    def poll(self, owner_id: uuid.UUID) -> dict[uuid.UUID, str | None]:
        """The runs of `owner_id` in Cancelling, with each request's message."""
        with self._lock:
            conn = self._conn
            if conn is None:
                conn = self._conn = self._connect()
            version = int(conn.execute("PRAGMA data_version").fetchone()[0])
            seen = self._seen.get(owner_id)
            if seen is not None and seen[0] == version:
                return dict(seen[1])
            rows = conn.execute(
                "SELECT id, state FROM flow_runs WHERE owner = ? AND state_type = 'CANCELLING'",
                (str(owner_id),),
            ).fetchall()
            found = {uuid.UUID(i): codec.decode_state(blob, None, None).message for i, blob in rows}
            if len(self._seen) >= 64:
                self._seen.clear()  # owners that went away
            self._seen[owner_id] = (version, found)
            return dict(found)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            self._seen.clear()
        if conn is not None:
            self._close(conn)


# -- writes (in the writer thread, inside its transaction) ----------------------------------
def claim(run_id: uuid.UUID, owner_id: uuid.UUID, writer: Writer) -> FlowRun:
    """Make `owner_id` the owner of the unfinished run; the run as stored afterwards."""
    entry = writer.entry(run_id)
    if entry is None:
        raise FlowRunNotFound(run_id)
    run = entry.run
    if run.state is not None and not run.state.is_final() and run.owner != owner_id:
        writer.update(entry, msgspec.structs.replace(run, owner=owner_id))
    return entry.run


def upsert_owner(owner: Owner, writer: Writer) -> bool:
    """Register or renew `owner`; True if its lease was still held (it was not recovered)."""
    conn = writer.conn
    assert conn is not None
    key = str(owner.id)
    row = conn.execute("SELECT lease_expires FROM owners WHERE id = ?", (key,)).fetchone()
    if row is None:
        conn.execute(
            f"INSERT INTO owners ({_OWNER_COLUMNS}, started) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                owner.pid,
                owner.hostname,
                owner.lease_expires,
                owner.start_time,
                owner.boot_id,
                owner.pid_ns,
                now().isoformat(),
            ),
        )
        return False
    conn.execute("UPDATE owners SET lease_expires = ? WHERE id = ?", (owner.lease_expires, key))
    return bool(row[0] >= time.time())


def release_owner(owner_id: uuid.UUID, writer: Writer) -> None:
    """Forget the owner; one that leaves runs unfinished is expired instead, for the sweeps."""
    conn = writer.conn
    assert conn is not None
    key = str(owner_id)
    unfinished = conn.execute(
        f"SELECT 1 FROM flow_runs WHERE owner = ? AND state_type IN {UNFINISHED_SQL} LIMIT 1",
        (key,),
    ).fetchone()
    if unfinished is None:
        conn.execute("DELETE FROM owners WHERE id = ?", (key,))
    else:
        conn.execute("UPDATE owners SET lease_expires = 0 WHERE id = ?", (key,))


def recover_planned(
    plan: Plan, stopped: list[uuid.UUID], caller: uuid.UUID | None, writer: Writer
) -> list[Decision]:
    """End each planned orphan whose owner has still stopped now, then forget those owners."""
    conn = writer.conn
    assert conn is not None
    at = time.time()
    owners = read_owners(conn)
    decisions: list[Decision] = []
    for run_id, owner_id, retry in plan:
        entry = writer.entry(run_id)
        if entry is None or entry.run.owner != owner_id or not is_orphan_candidate(entry.run):
            continue  # someone else got there first
        owner = owners.get(owner_id) if owner_id is not None else None
        why = stopped_because(owner, at)
        if why is None or owner_id == caller:
            continue  # renewed meanwhile: alive after all
        decision = recover(entry.run, owner, retry=retry, why=why)
        if decision.run is not None:
            writer.record(entry, decision)
        decisions.append(decision)
    writer.flush()
    # Their runs are ended (suspended ones wait for a resume, which makes them its own).
    gone = [str(i) for i in stopped if i in owners and stopped_because(owners[i], at) is not None]
    if gone:
        conn.execute(f"DELETE FROM owners WHERE id IN ({', '.join('?' * len(gone))})", gone)
    return decisions
