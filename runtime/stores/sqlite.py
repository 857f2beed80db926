"""`sqlite:///path`: the embedded, durable default store.

One writer thread group-commits every queued write (see `_sqlite_writer`); reads run on their
own connections, in threads of their own (per event loop), and never wait for it (WAL). Before
every batch and read the store checks that its file is still the one it opened
(`_sqlite_files`). A write returns once its transaction is committed: with `synchronous=normal`
(the default) it survives the process being killed; with `synchronous=full` also a power loss,
at one fsync per batch.

URLs follow SQLAlchemy: `sqlite:///runs.db` is relative, `sqlite:////abs/runs.db` absolute
(so `f"sqlite:///{path}"` works for both). Options: `?synchronous=full`, `?busy_timeout=5`
(seconds), `?mode=ro` (read-only: a Runtime on it reads runs and starts none).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote

import anyio
import anyio.to_thread

from actors import new_event

from ..errors import StoreError, StoreReadOnly, StoreStalled
from ..models import FlowRun
from ..policy import Decision
from ..results import encode_parameters
from ..states import State, StateType
from . import _sqlite_codec as codec
from . import _sqlite_owners as owners
from ._liveness import new_owner
from ._recovery import wants_retry
from ._sqlite_files import check_shm, close_connection
from ._sqlite_schema import Config, connect_reader, store_error
from ._sqlite_writer import CALL, CLOSE, CREATE, OPEN, SET, Op, Writer
from ._wakeup import current_waker

__all__ = ["SQLiteStore", "parse_sqlite_url"]

T = TypeVar("T")

_READ_THREADS = 8  # reads in flight at once per event loop (WAL readers never wait for writes)


def parse_sqlite_url(url: str) -> tuple[str, dict[str, Any]]:
    """(path, SQLiteStore keyword arguments) of a `sqlite:///...` URL."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a SQLite store URL: {url!r} (expected 'sqlite:///path/runs.db')")
    rest, _, query = url[len("sqlite:///") :].partition("?")
    path = unquote(rest)
    if not path:
        raise ValueError(f"the SQLite store URL {url!r} names no file")
    options: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key == "synchronous":
            options["synchronous"] = value.lower()
        elif key == "busy_timeout":
            options["busy_timeout"] = float(value)
        elif key == "mode" and value in ("ro", "rw"):
            options["read_only"] = value == "ro"
        else:
            raise ValueError(f"unknown option {key}={value!r} in the SQLite store URL {url!r}")
    return path, options


class SQLiteStore:
    """Runs, histories, results and owners in one SQLite file.

    Settings: `synchronous` ("normal" or "full"), `busy_timeout` (seconds a write waits for
    another connection's lock before `StoreLocked`), `read_only` (writes raise
    `StoreReadOnly` at once), `pragmas` (extra PRAGMAs for
    the writer's connection, e.g. `{"max_page_count": 1000}`), `max_batch` (writes per
    transaction at most).

    `open()`/`close()` are counted: several Runtimes (on one or more event loops) may share one
    store; the last `close()` flushes every queued write and stops the writer. Reads also work
    on a closed store.
    """

    writes_never_wait = False  # every write waits for its group commit

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "normal",
        busy_timeout: float = 5.0,
        read_only: bool = False,
        pragmas: Mapping[str, int | str] | None = None,
        max_batch: int = 4096,
        url: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.url = url or f"sqlite:///{self.path}"
        self.read_only = read_only
        self._config = Config(
            self.path,
            synchronous=synchronous.lower(),
            busy_timeout=busy_timeout,
            read_only=read_only,
            pragmas=dict(pragmas or {}),
        )
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._max_batch = max_batch
        self._lock = threading.Lock()  # guards _opens, _writer and the reader pool
        self._opens = 0
        self._writer: Writer | None = None
        # Thread id -> what the store keeps for the event loop running there. Each thread
        # reads and writes only its own entry (one dict operation, atomic).
        self._loops: dict[int, _Loop] = {}
        self._readers: list[sqlite3.Connection] = []
        self._pooling = False  # read connections are kept while the store is open
        self._cancel_watch = owners.CancelWatch(
            lambda: connect_reader(self._config), lambda conn: close_connection(conn, self.path)
        )

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        path, options = parse_sqlite_url(url)
        return cls(path, url=url, **options)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, synchronous={self._config.synchronous!r})"

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Open the file (creating it and its schema if needed) and start the writer."""
        token = self._loop().waker
        with self._lock:
            self._opens += 1
            if self._writer is not None:
                return
            writer = self._writer = Writer(
                self._config, max_batch=self._max_batch, on_close=self._close_readers
            )
            self._pooling = True
            ready = Op(OPEN, (), new_event(), token)
            writer.start(ready)
        await ready.event.wait()
        if ready.error is not None:
            with self._lock:
                self._opens = 0
                if self._writer is writer:
                    self._writer = None
                self._pooling = False
            raise ready.error

    async def close(self) -> None:
        """Flush every queued write, then stop the writer (at the last of several opens).

        Not shielded here: the caller bounds it (the Runtime shields it with a deadline).
        """
        with self._lock:
            if self._opens == 0:
                return
            self._opens -= 1
            writer = self._writer
            if self._opens > 0 or writer is None:
                return
            self._writer = None
        await self._wait(writer, Op(CLOSE, (), new_event(), self._loop().waker))

    # -- runs ---------------------------------------------------------------------------------
    async def create_flow_run(self, run: FlowRun) -> FlowRun:
        (created,) = await self.create_flow_runs((run,))
        return created

    async def create_flow_runs(
        self, runs: Sequence[FlowRun], *, then: Sequence[State | None] | None = None
    ) -> list[FlowRun]:
        items: list[tuple[FlowRun, bytes, State | None]] = []
        for i, run in enumerate(runs):
            if run.state is None:
                raise ValueError("a new flow run needs its first state")
            # Encoded here, before anything is queued: a parameter JSON cannot hold raises,
            # and no run is created.
            parameters = encode_parameters(run.flow_name, run.parameters)
            items.append((run, parameters, then[i] if then is not None else None))
        # One op, so one transaction: all of these runs are created, or none.
        async with self._loop().admission:
            result: list[FlowRun] = await self._write(CREATE, items)
        return result

    async def set_state(
        self,
        run_id: uuid.UUID,
        state: State,
        *,
        force: bool = False,
        stall_timeout: float | None = None,
        owner: uuid.UUID | None = None,
    ) -> Decision:
        writer = self._writable()
        op = Op(SET, (run_id, state, force, owner), new_event(), self._loop().waker)
        decision: Decision = await self._wait(writer, op, stall_timeout)
        return decision

    async def read_flow_run(self, run_id: uuid.UUID) -> FlowRun:
        return await self._read(codec.read_run, run_id)

    async def read_states(self, run_id: uuid.UUID) -> list[State]:
        return await self._read(codec.read_states, run_id)

    async def list_flow_runs(
        self,
        *,
        state: StateType | Iterable[StateType] | None = None,
        flow_name: str | None = None,
        limit: int | None = None,
    ) -> list[FlowRun]:
        states = (state,) if isinstance(state, StateType) else state
        return await self._read(codec.list_runs, states, flow_name, limit)

    # -- ownership ------------------------------------------------------------------------------
    # Owner ops take the writer's urgent lane: a lease is never renewed late because of a
    # long queue of run writes.
    async def register_owner(self, owner_id: uuid.UUID, lease_seconds: float) -> None:
        owner = new_owner(owner_id, lease_seconds)
        await self._call(functools.partial(owners.upsert_owner, owner), urgent=True)

    async def renew_lease(self, owner_id: uuid.UUID, lease_seconds: float) -> bool:
        owner = new_owner(owner_id, lease_seconds)
        held: bool = await self._call(functools.partial(owners.upsert_owner, owner), urgent=True)
        return held

    async def release_owner(self, owner_id: uuid.UUID) -> None:
        await self._call(functools.partial(owners.release_owner, owner_id), urgent=True)

    async def claim_flow_run(self, run_id: uuid.UUID, owner_id: uuid.UUID) -> FlowRun:
        run: FlowRun = await self._call(functools.partial(owners.claim, run_id, owner_id))
        return run

    async def runs_owned_by(self, owner_id: uuid.UUID) -> set[uuid.UUID]:
        return await self._read(owners.runs_owned_by, owner_id)

    async def cancel_requests(self, owner_id: uuid.UUID) -> dict[uuid.UUID, str | None]:
        requests: dict[uuid.UUID, str | None] = await anyio.to_thread.run_sync(
            self._cancel_requests_sync, owner_id, limiter=self._loop().reads
        )
        return requests

    def _cancel_requests_sync(self, owner_id: uuid.UUID) -> dict[uuid.UUID, str | None]:
        self._check_files()
        try:
            return self._cancel_watch.poll(owner_id)
        except sqlite3.Error as exc:
            raise store_error(exc, self._config) from exc

    async def recover_orphans(
        self,
        can_load: Callable[[str], bool] | None = None,
        *,
        full: bool = True,
        caller: uuid.UUID | None = None,
        only: Iterable[uuid.UUID] | None = None,
    ) -> list[Decision]:
        only = None if only is None else list(only)
        found = await self._read(owners.find_orphans, time.time(), full, caller, only)
        candidates, stopped = found
        if not candidates and not stopped:
            return []
        entrypoints = {run.entrypoint for run in candidates if wants_retry(run)}
        loadable: dict[str, bool] = {}
        if can_load is not None and entrypoints:
            # Importing the flows runs user code: in a worker thread, outside any transaction.
            loadable = await anyio.to_thread.run_sync(_try_loading, can_load, entrypoints)
        plan = [
            (run.id, run.owner, wants_retry(run) and loadable.get(run.entrypoint or "", False))
            for run in candidates
        ]
        decisions: list[Decision] = await self._call(
            functools.partial(owners.recover_planned, plan, stopped, caller)
        )
        return decisions

    # -- plumbing ---------------------------------------------------------------------------------
    def _writable(self) -> Writer:
        """The writer, for a write: refused at once if the store is not open or read-only."""
        if self.read_only:
            raise StoreReadOnly(
                f"The store {self.path} was opened read-only ({self.url}): its runs can be "
                "read, not written (open it without `mode=ro` to start or change runs).",
                self.path,
            )
        writer = self._writer
        if writer is None:
            raise _not_open(self.path)
        return writer

    def _loop(self) -> _Loop:
        """What the store keeps for the calling event loop (made on its first call)."""
        thread = threading.get_ident()
        loop = self._loops.get(thread)
        if loop is None or not loop.waker.is_current():  # a new loop in this thread
            loop = self._loops[thread] = _Loop(self._max_batch)
        return loop

    async def _write(self, kind: int, *args: Any) -> Any:
        writer = self._writable()
        return await self._wait(writer, Op(kind, args, new_event(), self._loop().waker))

    async def _call(self, fn: Callable[[Writer], T], *, urgent: bool = False) -> T:
        """Run `fn(writer)` in the writer thread, inside a batch's transaction (`urgent`: in
        the writer's own lane, before any queued run write)."""
        writer = self._writable()
        op = Op(CALL, (fn,), new_event(), self._loop().waker)
        result: T = await self._wait(writer, op, urgent=urgent)
        return result

    async def _wait(
        self, writer: Writer, op: Op, stall_timeout: float | None = None, *, urgent: bool = False
    ) -> Any:
        writer.put(op, urgent=urgent)
        # If this wait is cancelled the write still happens; only its answer is lost.
        if stall_timeout is None:
            await op.event.wait()
        else:
            while not op.event.is_set():
                # Wakes once per stall_timeout to look at the writer: as long as it commits
                # batches, this write's turn comes (the queue is first in, first out).
                with anyio.move_on_after(stall_timeout):
                    await op.event.wait()
                if not op.event.is_set() and writer.stalled_for() >= stall_timeout:
                    raise StoreStalled(
                        f"The store {self.path} has committed nothing for "
                        f"{writer.stalled_for():.3g} s; this write may still land later.",
                        self.path,
                    )
        if op.error is not None:
            raise op.error
        return op.result

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        # The store's own threads: user code holding every thread of anyio's default limiter
        # (sync hooks that never return, say) cannot starve the store's reads.
        limiter = self._loop().reads
        return await anyio.to_thread.run_sync(self._read_sync, fn, args, limiter=limiter)

    def _check_files(self) -> None:
        """Before a read: the file is still the one open, and its -shm file writable."""
        writer = self._writer
        files = writer.files if writer is not None else None
        if files is not None:
            files.check()
        else:
            check_shm(self.path)  # a read may write to the -shm mapping: it must be writable

    def _read_sync(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        self._check_files()
        with self._lock:
            pooled = self._pooling
            conn = self._readers.pop() if pooled and self._readers else None
        if conn is None:
            conn = connect_reader(self._config)
        keep = False
        try:
            result = fn(conn, *args)
            keep = pooled
            return result
        except sqlite3.Error as exc:
            raise store_error(exc, self._config) from exc
        finally:
            if keep:
                with self._lock:
                    keep = self._pooling
                    if keep:
                        self._readers.append(conn)
            if not keep:
                close_connection(conn, self.path)

    def _close_readers(self) -> None:
        """Called by the writer as it closes: pooled read connections go first."""
        with self._lock:
            self._pooling = False
            readers, self._readers = self._readers, []
        for conn in readers:
            close_connection(conn, self.path)
        self._cancel_watch.close()


class _Loop:
    """What the store keeps per event loop: how to wake its callers, and its limits."""

    __slots__ = ("admission", "reads", "waker")

    def __init__(self, max_batch: int) -> None:
        self.waker = current_waker()
        # New runs waiting for their first commit, at most two batches' worth: beyond that a
        # submit waits before queueing (it can still be cancelled there), so the writer's
        # backlog stays short and the states of runs already started never wait long behind
        # a flood of new ones (each of those waits is bounded by persist_timeout).
        self.admission = anyio.CapacityLimiter(2 * max_batch)
        self.reads = anyio.CapacityLimiter(_READ_THREADS)


def _not_open(path: str) -> StoreError:
    return StoreError(
        f"The store {path} is not open (use `async with Runtime(store=...)` "
        "or `await store.open()`).",
        path,
    )


def _try_loading(can_load: Callable[[str], bool], entrypoints: set[str | None]) -> dict[str, bool]:
    loadable: dict[str, bool] = {}
    for entrypoint in entrypoints:
        if entrypoint:
            try:
                loadable[entrypoint] = bool(can_load(entrypoint))
            except Exception:
                loadable[entrypoint] = False
    return loadable
