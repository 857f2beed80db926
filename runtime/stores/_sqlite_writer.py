"""The SQLite store's writer thread: group commit of every queued write.

Callers on the event loop queue an `Op` and wait on its event. The writer takes everything
queued (up to `max_batch`), applies it in one `BEGIN IMMEDIATE ... COMMIT` transaction (the
transition policy runs here, against the row as stored), then queues one wake-up per event loop
for the batch's callers, without waiting for any loop (see `_sqlite_wakeups`). An op that fails
on its own (a rejected or impossible write) answers its caller alone; a failed transaction
answers every caller in it with the error, and the writer goes on with the next batch.

Owner ops (registering, renewing a lease) go in a lane of their own, taken before any queued
run write and committed in a transaction of their own: however long the queue of run writes,
a lease is renewed after at most the batch being committed, so a busy owner never looks dead.

Rows of unfinished runs are cached here: the writer is this process's only writer, and any
other process's commit changes `PRAGMA data_version`, which empties the cache.
"""

from __future__ import annotations

import functools
import itertools
import logging
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from actors import Event

from ..errors import FlowRunNotFound, StoreError, StoreFileGone, StoreReadOnly
from ..models import FlowRun
from ..policy import Decision, Status, decide, first_state
from ..results import PersistedResult
from ..states import State
from . import _sqlite_codec as codec
from ._sqlite_files import FileWatch, check_shm, close_connection
from ._sqlite_schema import Config, connect_writer, store_error
from ._sqlite_wakeups import Wakeups
from ._wakeup import LoopWaker

__all__ = ["CALL", "CREATE", "SET", "Op", "Writer"]

logger = logging.getLogger("flowactor.store.sqlite")

OPEN, CREATE, SET, CALL, CLOSE = range(5)

_MAX_ROWS = 1000  # rows per multi-row statement (also bounded by SQLite's variable limit)
_UPDATE_FROM = sqlite3.sqlite_version_info >= (3, 33, 0)
_chain = itertools.chain.from_iterable  # flattens rows into one parameter list


class Op:
    """One queued write: what to do, and where its answer goes."""

    __slots__ = ("args", "error", "event", "kind", "result", "token")

    def __init__(self, kind: int, args: tuple[Any, ...], event: Event, token: LoopWaker) -> None:
        self.kind = kind
        self.args = args
        self.event = event
        self.token = token  # the caller's event loop, where `event` is set
        self.result: Any = None
        self.error: BaseException | None = None


class _Entry:
    """A cached run: the row as committed (or as this batch will commit it)."""

    __slots__ = ("blob", "num", "run", "seq")

    def __init__(self, num: int, run: FlowRun, seq: int, blob: bytes | None) -> None:
        self.num = num  # the run's row number: the key of its history
        self.run = run
        self.seq = seq  # the current state's position in the history
        self.blob = blob  # the current state, encoded


class Writer:
    """The one thread that writes to the file, in batches."""

    def __init__(
        self, config: Config, *, max_batch: int, on_close: Callable[[], None] | None = None
    ) -> None:
        self.config = config
        self._max_batch = max_batch
        self._on_close = on_close
        self._queue: deque[Op] = deque()
        self._urgent: deque[Op] = deque()  # owner ops: taken before anything in _queue
        self._cond = threading.Condition()  # guards both queues, _stopping and _wakeups
        self._wakeups = Wakeups(self._cond)  # which loops have been answered
        self._stopping = False
        self._busy = False  # between taking a batch and looking for the next one
        self._thread: threading.Thread | None = None
        self.conn: sqlite3.Connection | None = None
        self.files: FileWatch | None = None  # checked before every batch (and every read)
        self._gone = False  # the file is no longer the store: its log was emptied
        # Batch state, touched only by the writer thread.
        self._cache: dict[uuid.UUID, _Entry] = {}
        self._data_version = -1
        self._dirty: dict[uuid.UUID, _Entry] = {}
        self._new: dict[uuid.UUID, bytes] = {}  # runs created in this batch -> parameters
        self._state_rows: list[tuple[int, int, bytes]] = []
        self._result_rows: list[tuple[int, int, str, bytes]] = []
        self._touched: list[_Entry] = []
        self._existing: set[str] = set()  # ids of this batch's new runs already in the file
        self._max_variables = 999
        self._next_num = 1  # the row number of the next new run
        # When the writer last showed progress (took a batch or committed one), by the
        # monotonic clock; read by waiting callers from other threads (a float is atomic).
        self._progress_at = time.monotonic()

    # -- the callers' side ---------------------------------------------------------------------
    def start(self, ready: Op) -> None:
        """Start the thread; `ready` is answered once the file is open (or failed to open)."""
        name = f"flowactor-sqlite-writer {self.config.path}"
        self._thread = threading.Thread(target=self._main, args=(ready,), name=name, daemon=True)
        self._thread.start()

    def put(self, op: Op, *, urgent: bool = False) -> None:
        """Queue `op`; an `urgent` one (a CALL) goes before every queued run write."""
        with self._cond:
            if self._stopping:
                raise StoreError(f"The store {self.config.path} is closed.", self.config.path)
            if urgent:
                self._urgent.append(op)
            else:
                self._queue.append(op)
                self._wakeups.queued(op.token)
            if op.kind == CLOSE:
                self._stopping = True
            self._cond.notify()

    def stalled_for(self) -> float:
        """Seconds since the writer last took or committed a batch (0 while it is idle)."""
        with self._cond:
            if not self._busy and not self._urgent and not self._wakeups.ready():
                return 0.0  # nothing to do (or waiting for a loop to answer) is not being stuck
        return time.monotonic() - self._progress_at

    # -- the writer thread ---------------------------------------------------------------------
    def _main(self, ready: Op) -> None:
        try:
            self.conn = connect_writer(self.config)
            self._max_variables = self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            if not self.config.read_only:
                self.files = FileWatch(self.config.path)
        except BaseException as exc:
            ready.error = exc if isinstance(exc, StoreError) else store_error(exc, self.config)
            with self._cond:
                self._stopping = True
                stranded = [*self._urgent, *self._queue]
                self._urgent.clear()
                self._queue.clear()
            for op in stranded:
                op.error = ready.error
            self._wakeups.deliver([ready, *stranded])
            return
        self._wakeups.deliver([ready])
        closing: Op | None = None
        while closing is None:
            batch = self._take()
            if batch[-1].kind == CLOSE:  # always last: put() takes nothing after it
                closing = batch.pop()
            if batch:
                self._commit(batch)
                self._progress_at = time.monotonic()
                self._wakeups.deliver(batch)  # never waits: _take waits for the loops' answers
        self._close()
        self._wakeups.deliver([closing])

    def _take(self) -> list[Op]:
        with self._cond:
            self._busy = False
            # Waits until a loop with writes queued has woken the callers of the last batch:
            # what a busy loop queues meanwhile joins the next batch, so the busier the loops,
            # the larger (and cheaper per write) batches get.
            while not self._urgent and not self._wakeups.ready():
                self._cond.wait()
            self._busy = True
            self._progress_at = time.monotonic()
            # Only constant-time work while the lock is held: a caller's put() waits for it,
            # and this thread may lose the GIL in the middle of any longer step.
            if self._urgent:  # a batch of their own, so they never wait for a big one
                urgent, self._urgent = self._urgent, deque()
                return list(urgent)
            queue = self._queue
            if len(queue) <= self._max_batch:
                self._queue = deque()
                self._wakeups.taken()
                return list(queue)
            self._queue = deque()
        # More than a batch is queued (rare): split it outside the lock, put the rest back.
        batch = [queue.popleft() for _ in range(self._max_batch)]
        with self._cond:
            queue.extend(self._queue)  # queued meanwhile: after what was there before
            self._queue = queue
            self._wakeups.taken(queue)
        return batch

    def _close(self) -> None:
        try:
            if self._on_close is not None:
                self._on_close()  # the readers close first: the writer's close checkpoints
            assert self.conn is not None
            check_shm(self.config.path)
            if not self.config.read_only:
                self.conn.execute("PRAGMA optimize")
        except StoreReadOnly:
            pass  # the -shm file cannot be written: close_connection says so
        except Exception:
            logger.exception("closing the store %s", self.config.path)
        finally:
            assert self.conn is not None
            close_connection(self.conn, self.config.path)

    def _commit(self, batch: list[Op]) -> None:
        conn = self.conn
        assert conn is not None
        try:
            if self.files is not None:
                self.files.check()  # the file is still the store, and SQLite can write it
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                self._cache.clear()  # another connection committed: our rows may be stale
                self._next_num = conn.execute(codec.LAST_RUN_NUM).fetchone()[0] + 1
                self._data_version = version
            self._existing = self._existing_runs(
                [item[0] for op in batch if op.kind == CREATE for item in op.args[0]]
            )
            for op in batch:
                self._apply(op)
            self.flush()
            conn.execute("COMMIT")
        except StoreFileGone as exc:
            self._abort(batch, exc)
            if not self._gone:
                self._gone = True
                self._empty_log()
            return
        except Exception as exc:
            self._abort(batch, exc)
            return
        for entry in self._touched:
            state = entry.run.state
            if state is not None and state.is_final():
                self._cache.pop(entry.run.id, None)  # finished: keep the cache to runs in flight
        self._touched.clear()

    def _empty_log(self) -> None:
        """Move what the log holds into the old file, and empty the log (once, when the file
        is found gone).

        The -wal file is found by its name: left with frames in it next to a file put in the
        store's place, it would be read as that file's log (and SQLite's own close skips its
        checkpoint once the database has moved).
        """
        assert self.conn is not None
        try:
            check_shm(self.config.path)
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except (sqlite3.Error, StoreError) as exc:
            logger.error("could not empty the log of the lost store %s: %s", self.config.path, exc)

    def _abort(self, batch: list[Op], exc: Exception) -> None:
        conn = self.conn
        assert conn is not None
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                logger.exception("rolling back a failed batch on %s", self.config.path)
        self._cache.clear()
        self._data_version = -1  # re-read what is committed before the next batch
        self._dirty.clear()
        self._new.clear()
        self._state_rows.clear()
        self._result_rows.clear()
        self._touched.clear()
        if not isinstance(exc, sqlite3.Error | StoreError):
            logger.exception("unexpected error in a batch on %s", self.config.path)
        for op in batch:
            op.result = None
            op.error = store_error(exc, self.config)  # one error object per caller

    def _apply(self, op: Op) -> None:
        try:
            if op.kind == SET:
                op.result = self._set_state(*op.args)
            elif op.kind == CREATE:
                op.result = self._create(*op.args)
            elif op.kind == CALL:
                self.flush()
                op.result = op.args[0](self)
        except (sqlite3.Error, StoreError):
            raise  # the transaction is in doubt: the whole batch fails
        except Exception as exc:
            op.error = exc  # this caller's own problem: the batch goes on

    def _create(self, items: list[tuple[FlowRun, bytes, State | None]]) -> list[FlowRun]:
        """Record new runs (all, or none: a duplicate id refuses the whole op)."""
        assert self.conn is not None
        existing = self._existing
        for run, _, _ in items:
            if run.id in self._cache or (existing and str(run.id) in existing):
                raise ValueError(f"flow run {run.id} already exists")
        created: list[FlowRun] = []
        for run, parameters, then in items:
            # The first state goes through the policy too, for its bookkeeping.
            decision = first_state(run)
            assert decision.run is not None
            entry = self._cache[run.id] = _Entry(self._next_num, decision.run, 0, None)
            self._next_num += 1
            self._new[run.id] = parameters
            self.record(entry, decision)
            if then is not None:  # e.g. Running, for a run that can start at once
                decision = decide(entry.run, then)
                if decision.run is not None:
                    self.record(entry, decision)
            created.append(entry.run)
        return created

    def _set_state(
        self, run_id: uuid.UUID, state: State, force: bool, owner: uuid.UUID | None = None
    ) -> Decision:
        entry = self.entry(run_id)
        if entry is None:
            raise FlowRunNotFound(run_id)
        result = None
        if type(state.data) is PersistedResult:
            result = state.data
            state = msgspec.structs.replace(state, data=result.value)
        decision = decide(entry.run, state, force=force, owner=owner)
        if decision.run is not None:
            self.record(entry, decision, result if decision.status is Status.ACCEPT else None)
        return decision

    # -- for ops run inside the transaction (CALL) ---------------------------------------------
    def entry(self, run_id: uuid.UUID) -> _Entry | None:
        """The run as stored (cached), or None."""
        entry = self._cache.get(run_id)
        if entry is None:
            assert self.conn is not None
            key = str(run_id)
            row = self.conn.execute(codec.SELECT_RUN + " WHERE r.id = ?", (key,)).fetchone()
            if row is None:
                return None
            entry = _Entry(row[22], codec.run_from_row(row), row[6], row[7])
            self._cache[run_id] = entry
        return entry

    def record(
        self, entry: _Entry, decision: Decision, result: PersistedResult | None = None
    ) -> None:
        """Write what the policy decided: the run's new row and the next history entry."""
        assert decision.run is not None
        blob = codec.encode_state(decision.state, result)  # before any change: it may raise
        entry.run = decision.run
        entry.seq += 1
        entry.blob = blob
        self._dirty[decision.run.id] = entry
        self._state_rows.append((entry.num, entry.seq, blob))
        if result is not None:
            self._result_rows.append((entry.num, entry.seq, result.serializer, result.payload))

    def update(self, entry: _Entry, run: FlowRun) -> None:
        """Write the run's row again with `run` (same state: its history does not grow)."""
        entry.run = run
        self._dirty[run.id] = entry

    def flush(self) -> None:
        """Execute the SQL for everything recorded so far (inside the open transaction)."""
        conn = self.conn
        assert conn is not None
        if self._dirty:
            inserts: list[tuple[Any, ...]] = []
            updates: list[tuple[Any, ...]] = []
            for run_id, entry in self._dirty.items():
                self._touched.append(entry)
                parameters = self._new.pop(run_id, None)
                blob = entry.blob
                assert blob is not None
                if parameters is None:
                    updates.append(codec.update_row(entry.num, entry.run, entry.seq, blob))
                else:
                    inserts.append(
                        codec.insert_row(entry.num, entry.run, entry.seq, blob, parameters)
                    )
            self._dirty.clear()
            if inserts:
                self._execute_rows(codec.INSERT_RUN, inserts)
            if updates and _UPDATE_FROM:
                self._execute_rows(codec.UPDATE_RUNS, updates)
            elif updates:
                conn.executemany(codec.UPDATE_RUN, updates)
        if self._state_rows:
            self._execute_rows(codec.INSERT_STATE, self._state_rows)
            self._state_rows.clear()
        if self._result_rows:
            self._execute_rows(codec.INSERT_RESULT, self._result_rows)
            self._result_rows.clear()

    def _execute_rows(self, template: str, rows: list[tuple[Any, ...]]) -> None:
        """Run a multi-row statement over `rows`, in as few statements as SQLite allows."""
        assert self.conn is not None
        width = len(rows[0])
        per = max(1, min(_MAX_ROWS, self._max_variables // width))
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            count = _padded(len(chunk), per)
            values = list(_chain(chunk))
            if count > len(chunk):
                values.extend([None] * (width * (count - len(chunk))))  # rows the SQL skips
            self.conn.execute(_sql(template, width, count), values)

    def _existing_runs(self, runs: list[FlowRun]) -> set[str]:
        """Which of these new runs' ids are already in the file (one query per chunk)."""
        assert self.conn is not None
        keys: list[str | None] = [str(run.id) for run in runs]
        found: set[str] = set()
        per = max(1, min(_MAX_ROWS, self._max_variables))
        for start in range(0, len(keys), per):
            chunk = keys[start : start + per]
            count = _padded(len(chunk), per)
            chunk.extend([None] * (count - len(chunk)))  # `id IN (NULL)` matches nothing
            sql = codec.EXISTING_RUNS.format(rows=", ".join("?" * count))
            found.update(row[0] for row in self.conn.execute(sql, chunk))
        return found


# The row counts statements are padded to (at most half of a statement is padding): few enough
# that the writer's statement cache keeps every statement a batch uses prepared.
_COUNTS = sorted({c for k in range(10) for c in (1 << k, 3 << k >> 1)} | {_MAX_ROWS})


def _padded(count: int, per: int) -> int:
    """The row count to pad `count` rows to: the next of `_COUNTS`, at most `per`."""
    for padded in _COUNTS:
        if padded >= count:
            return min(padded, per)
    return per


@functools.lru_cache(maxsize=256)
def _sql(template: str, width: int, count: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return template.format(rows=", ".join([row] * count))
