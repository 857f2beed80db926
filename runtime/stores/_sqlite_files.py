"""The SQLite store's files on disk: is the file still ours, can it be written, why did it fail.

SQLite keeps three files: the database, its write-ahead log (`-wal`) and the log's shared-memory
index (`-shm`, mapped into every process using the store). It reports problems with them in
generic terms (SQLITE_CANTOPEN, "disk I/O error"), or not at all: a deleted database goes on
accepting writes into its unlinked inode, and a `-shm` file that cannot be written any more
kills the process with SIGBUS the next time SQLite writes to its mapping. The writer asks
`FileWatch.check` before every batch; the error mapping asks `diagnose` what went wrong.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sqlite3
import stat

from ..errors import StoreError, StoreFileGone, StoreReadOnly

__all__ = ["FileWatch", "check_shm", "close_connection", "diagnose"]

logger = logging.getLogger("flowactor.store.sqlite")


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at `path` now, or None if there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class FileWatch:
    """What the writer checks before each batch, and readers before each read (two system
    calls, about 1 us).

    The database must still be the file the writer opened (same device and inode at the same
    path): a store deleted, moved or replaced while open would otherwise acknowledge writes
    that nobody can ever read, and read another file's log over its own pages. Its `-shm`
    file must still be there and writable (see `check_shm`).
    """

    __slots__ = ("_identity", "_path", "_shm")

    def __init__(self, path: str) -> None:
        """Taken right after the writer opened `path` (its connection holds the file now)."""
        self._path = path
        self._identity = _identity(path)
        shm = f"{path}-shm"
        # Without a -shm file (an exclusive locking mode keeps the index in memory) there is
        # nothing mapped to protect.
        self._shm = shm if os.path.exists(shm) else None

    def check(self) -> None:
        """Raise `StoreFileGone` or `StoreReadOnly` if the store must not be used now."""
        now = _identity(self._path)
        if now is None or now != self._identity:
            raise _gone(self._path, "deleted or moved" if now is None else "replaced")
        if self._shm is not None and not os.access(self._shm, os.W_OK):
            raise _shm_problem(self._path)


def check_shm(path: str) -> None:
    """Raise `StoreReadOnly` if the store's `-shm` file exists but cannot be written.

    SQLite writes to that file through a memory mapping, even to read (it marks what each
    reader sees) and to close (a checkpoint): a write the file system refuses there is a
    SIGBUS, which kills the process. So nothing touches a connection while this fails.
    """
    shm = f"{path}-shm"
    if not os.access(shm, os.W_OK) and os.path.exists(shm):
        raise _shm_problem(path)


def close_connection(conn: sqlite3.Connection, path: str) -> None:
    """Close `conn`, unless closing would write to a `-shm` file that cannot be written.

    Such a connection is abandoned instead, for the rest of the process's life (closing it, or
    freeing it, would crash the process): the file is made safe by making it writable again.
    """
    try:
        check_shm(path)
    except StoreReadOnly as exc:
        logger.error("Leaving a connection to %s open until the process exits: %s", path, exc)
        # Never freed: freeing the object closes the connection (and checkpoints) too.
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(conn))
        return
    conn.close()


def _gone(path: str, how: str) -> StoreFileGone:
    return StoreFileGone(
        f"The store's file {path} was {how} while the store was open: writes (and reads) are "
        "refused from now on (acknowledged, writes would be lost with the old file). Close the "
        "store (every Runtime using it) and open it again to use what is at that path now.",
        path,
    )


def _shm_problem(path: str) -> StoreError:
    shm = f"{path}-shm"
    if not os.path.exists(shm):
        return StoreFileGone(
            f"The store's shared-memory file {shm} was deleted while the store was open: "
            "writes and reads are refused (other processes would no longer see the same log).",
            path,
        )
    return StoreReadOnly(
        f"The store's shared-memory file {shm} cannot be written (immutable, read-only, or "
        "owned by another user): the store is not used until it can be (SQLite writing to it "
        "would kill the process with SIGBUS). Make it writable again (e.g. `chattr -i`).",
        path,
    )


def diagnose(path: str, *, creating: bool = True) -> StoreError | None:
    """Why the store's files cannot be opened or written, if the file system says; else None.

    Asked when SQLite failed with a generic error (cannot open, disk I/O error). `creating`:
    whether the store may have to create its file (false for readers).
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        return StoreError(f"The store {path} cannot be opened: {exc}.", path)
    if mode is not None and stat.S_ISDIR(mode):
        return StoreError(
            f"The store {path} is a directory, not a database file: give a file path inside "
            f"it, such as sqlite:///{os.path.join(path, 'runs.db')}.",
            path,
        )
    if not os.path.isdir(directory):
        return StoreError(
            f"The directory {directory} of the store {path} does not exist (it is not created "
            "for you: check the path, or create the directory).",
            path,
        )
    if mode is None:
        if creating and not os.access(directory, os.W_OK):
            return StoreReadOnly(
                f"The store {path} does not exist and cannot be created: its directory "
                f"{directory} is read-only (or not writable by this user).",
                path,
            )
        if not creating:
            return StoreError(f"The store {path} does not exist.", path)
        return None
    for suffix, role in (("", "database"), ("-wal", "write-ahead log"), ("-shm", "shared-memory")):
        name = path + suffix
        if os.path.exists(name) and not os.access(name, os.W_OK):
            return StoreReadOnly(
                f"The store's {role} file {name} cannot be written (immutable, read-only, "
                "or owned by another user); make it writable again (e.g. `chattr -i` or "
                "`chmod u+w`).",
                path,
            )
    wal_missing = not os.path.exists(f"{path}-wal") or not os.path.exists(f"{path}-shm")
    if wal_missing and not os.access(directory, os.W_OK):
        return StoreReadOnly(
            f"The store {path} cannot be opened for writing: SQLite creates {path}-wal and "
            f"{path}-shm next to it, and its directory {directory} is read-only (or not "
            "writable by this user).",
            path,
        )
    return None
