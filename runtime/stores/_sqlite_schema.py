"""The SQLite store's schema, connections and error mapping.

Tables:

- `flow_runs`: one row per run (the FlowRun's fields as columns; `state` is the current state
  encoded with msgspec JSON, `state_seq` its position in the history). `owner` is the Runtime
  driving the run; its lease lives in `owners` (one row and one renewal write per process, not
  per run). `num` numbers runs in creation order: the history is keyed by it, so that writes
  land on the few pages of recent runs instead of on random pages (run ids are random).
- `flow_run_states`: the full history, `(run_num, seq)` -> encoded State.
- `flow_run_results`: persisted results, keyed like the Completed state they belong to.
- `owners`: live Runtimes: id, pid, hostname, lease_expires (time.time() seconds), and what
  makes the pid meaningful (start_time, boot_id, pid_ns; see `_liveness`).

The schema version is `PRAGMA user_version`; `PRAGMA application_id` marks the file as ours.
Version 2 added the owners' process identity and the index of cancel requests; a version 1
file is migrated when a writer opens it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from ..errors import (
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreLocked,
    StoreReadOnly,
    StoreSchemaError,
)
from ._sqlite_files import diagnose

__all__ = ["SCHEMA_VERSION", "Config", "connect_reader", "connect_writer", "store_error"]

SCHEMA_VERSION = 2
APPLICATION_ID = 0x666C6F77  # "flow"

UNFINISHED_SQL = "('SCHEDULED', 'PENDING', 'RUNNING', 'CANCELLING', 'PAUSED')"

_SCHEMA = (
    """CREATE TABLE flow_runs (
        num INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        flow_name TEXT NOT NULL,
        flow_version TEXT,
        parameters BLOB NOT NULL,
        state_type TEXT,
        state_seq INTEGER NOT NULL,
        state BLOB,
        run_count INTEGER NOT NULL,
        parent_id TEXT,
        tags TEXT NOT NULL,
        created TEXT NOT NULL,
        start_time TEXT,
        end_time TEXT,
        owner TEXT,
        retries INTEGER NOT NULL,
        retry_delay TEXT NOT NULL,
        entrypoint TEXT,
        pause_keys TEXT NOT NULL,
        resuming INTEGER NOT NULL
    )""",
    # Only unfinished runs are indexed by owner: recovery looks for them, and a run leaves the
    # index when it ends, so the index stays as small as the work in flight.
    f"CREATE INDEX flow_runs_unfinished ON flow_runs (owner) WHERE state_type IN {UNFINISHED_SQL}",
    """CREATE TABLE flow_run_states (
        run_num INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        state BLOB NOT NULL,
        PRIMARY KEY (run_num, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE flow_run_results (
        run_num INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        serializer TEXT NOT NULL,
        payload BLOB NOT NULL,
        PRIMARY KEY (run_num, seq)
    )""",
    """CREATE TABLE owners (
        id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        hostname TEXT NOT NULL,
        started TEXT NOT NULL,
        lease_expires REAL NOT NULL
    )""",
)
# What each version adds to the one before (a new file gets all of them, in order).
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE owners ADD COLUMN start_time INTEGER",
        "ALTER TABLE owners ADD COLUMN boot_id TEXT",
        "ALTER TABLE owners ADD COLUMN pid_ns TEXT",
        # The cancel requests an owner polls for: as small as the runs being cancelled.
        "CREATE INDEX flow_runs_cancelling ON flow_runs (owner) WHERE state_type = 'CANCELLING'",
    ),
}

_SYNCHRONOUS = ("off", "normal", "full", "extra")
# SQLite's primary result codes whose cause is often in the file system (see _sqlite_files).
_FILE_ERRORS = (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY)


@attrs.frozen
class Config:
    """How to open the store's file."""

    path: str
    synchronous: str = "normal"
    busy_timeout: float = 5.0
    read_only: bool = False
    pragmas: Mapping[str, int | str] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.synchronous not in _SYNCHRONOUS:
            raise ValueError(
                f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, got {self.synchronous!r}"
            )
        if self.busy_timeout < 0:
            raise ValueError("busy_timeout must not be negative")
        for name in self.pragmas:
            if not name.replace("_", "").isalnum():
                raise ValueError(f"not a pragma name: {name!r}")


def connect_writer(config: Config) -> sqlite3.Connection:
    """The writer's connection (WAL, schema checked or created). Raises `StoreError`s.

    Runs in the writer thread: it may sleep while another process holds the file's lock.
    """
    try:
        # Room for every padded multi-row statement (see _sqlite_writer._COUNTS) and the rest.
        conn = _connect(config, check_same_thread=True, cached_statements=256)
    except sqlite3.Error as exc:
        raise store_error(exc, config) from exc
    try:
        _while_busy(lambda: _prepare(conn, config), config)
    except sqlite3.Error as exc:
        conn.close()
        raise store_error(exc, config) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, config: Config) -> None:
    """Set the writer's pragmas and check or create the schema (safe to run again)."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal" and not config.read_only:
        raise StoreError(f"The store {config.path} cannot use WAL mode (got {mode!r}).")
    conn.execute(f"PRAGMA synchronous={config.synchronous.upper()}")
    conn.execute("PRAGMA cache_size=-16000")  # 16 MiB: the hot rows of every run in flight
    # The multi-row UPDATE ... FROM (VALUES ...) materializes its rows in a temporary
    # table. With temporary files (the default) SQLite opens one per statement, which cost
    # ~70 us per batch, more than the whole UPDATE; its few rows fit in memory.
    conn.execute("PRAGMA temp_store=MEMORY")
    _ensure_schema(conn, config)
    for name, value in config.pragmas.items():
        conn.execute(f"PRAGMA {name}={int(value) if isinstance(value, int) else value!r}")


def _while_busy(step: Callable[[], None], config: Config) -> None:
    """Run `step`, again and again while the file is locked, for up to `busy_timeout`.

    SQLite's own busy wait does not cover every case: where waiting could deadlock it fails at
    once. Processes opening a new file together hit that: some fail to switch it to WAL.
    """
    deadline = time.monotonic() + config.busy_timeout
    delay = 0.001
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            left = deadline - time.monotonic()
            if not _is_busy(exc) or left <= 0:
                raise
        time.sleep(min(delay, left))  # the writer thread's own sleep, not the event loop's
        delay = min(delay * 2, 0.05)


def _is_busy(exc: BaseException) -> bool:
    """Whether `exc` is SQLite's "the file is locked" (SQLITE_BUSY or SQLITE_LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def connect_reader(config: Config) -> sqlite3.Connection:
    """A read connection (any thread). In WAL mode readers never wait for the writer."""
    if not Path(config.path).exists():
        raise StoreError(f"The store {config.path} does not exist.", config.path)
    try:
        conn = _connect(config, check_same_thread=False)
        conn.execute("PRAGMA query_only=1")
    except sqlite3.Error as exc:
        raise store_error(exc, config) from exc
    return conn


def _connect(
    config: Config, *, check_same_thread: bool, cached_statements: int = 64
) -> sqlite3.Connection:
    if config.read_only:
        target, uri = Path(config.path).absolute().as_uri() + "?mode=ro", True
    else:
        target, uri = config.path, False
    return sqlite3.connect(
        target,
        uri=uri,
        timeout=config.busy_timeout,
        isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
        check_same_thread=check_same_thread,
        cached_statements=cached_statements,
    )


def _ensure_schema(conn: sqlite3.Connection, config: Config) -> None:
    version, app_id = _version(conn)
    if version == 0 and app_id == 0:
        if config.read_only:
            if _has_tables(conn):
                raise _not_ours(config)
            raise StoreReadOnly(
                f"The store {config.path} is read-only and has no flowactor schema yet.",
                config.path,
            )
        # Create under the write lock, checking again: another process may have just done it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version, app_id = _version(conn)
            if version == 0 and app_id == 0:
                if _has_tables(conn):
                    raise _not_ours(config)
                for statement in _SCHEMA:
                    conn.execute(statement)
                _migrate(conn, 1)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                version, app_id = SCHEMA_VERSION, APPLICATION_ID
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    if app_id != APPLICATION_ID:
        raise _not_ours(config)
    if version < SCHEMA_VERSION and not config.read_only:
        _in_transaction(conn, lambda: _migrate(conn, None))
    if version > SCHEMA_VERSION:
        raise StoreSchemaError(
            f"The store {config.path} was written by a newer flowactor (schema version "
            f"{version}; this one reads up to {SCHEMA_VERSION}). Upgrade flowactor or use "
            "another file.",
            config.path,
        )


def _migrate(conn: sqlite3.Connection, version: int | None) -> None:
    """Bring the schema from `version` (None: as the file says) up to SCHEMA_VERSION.

    Inside the caller's write transaction: another process migrating at the same time either
    went first (the version read here is already the new one) or waits for this one.
    """
    if version is None:
        version = _version(conn)[0]
    for target in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[target]:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version={max(version, SCHEMA_VERSION)}")


def _in_transaction(conn: sqlite3.Connection, step: Callable[[], None]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        step()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _version(conn: sqlite3.Connection) -> tuple[int, int]:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    return int(version), int(app_id)


def _has_tables(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0)


def _not_ours(config: Config) -> StoreSchemaError:
    return StoreSchemaError(
        f"The file {config.path} is a SQLite database but not a flowactor store.", config.path
    )


def store_error(exc: BaseException, config: Config) -> StoreError:
    """The typed error for a failed SQLite call, naming the file."""
    path = config.path
    if isinstance(exc, StoreError):
        return exc
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    name = getattr(exc, "sqlite_errorname", type(exc).__name__)
    detail = f"{exc} ({name})"
    if _is_busy(exc):
        return StoreLocked(
            f"The store {path} is locked: another connection held its write lock for longer "
            f"than the busy timeout ({config.busy_timeout:g} s): {detail}.",
            path,
        )
    if primary in _FILE_ERRORS and not (primary == sqlite3.SQLITE_READONLY and config.read_only):
        # SQLite's words are generic ("unable to open database file", "disk I/O error"): the
        # file system can usually say which file is the problem, and why.
        found = diagnose(path, creating=not config.read_only)
        if found is not None:
            return found
    if primary == sqlite3.SQLITE_READONLY:
        return StoreReadOnly(
            f"The store {path} is read-only: {detail}. Check the file's permissions and mount.",
            path,
        )
    if primary == sqlite3.SQLITE_FULL:
        return StoreFull(
            f"The store {path} is full (disk or size limit reached): {detail}. Runs already "
            "committed are kept; free some space.",
            path,
        )
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StoreCorrupt(
            f"The store {path} is corrupt or is not a SQLite database: {detail}.", path
        )
    return StoreError(f"The store {path} failed: {detail}.", path)
