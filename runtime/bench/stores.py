"""Which flowactor stores the harness can use, and a fresh store URL for each measurement."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import unquote

__all__ = ["fresh_url", "remove_sqlite", "sqlite_path", "store_url", "unavailable"]

_SQLITE = "sqlite:///"


def store_url(kind: str, workdir: str, tag: str) -> str:
    """A URL for a fresh, empty store of `kind` ("memory" or "sqlite")."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{Path(workdir, f'{tag}-{uuid.uuid4().hex[:12]}.db')}"
    raise ValueError(f"unknown store kind {kind!r}")


def fresh_url(store: str, workdir: str, tag: str, *, reuse: bool = False) -> str:
    """The URL one measurement uses for `store`: "memory", "sqlite" or a store URL.

    "sqlite" is a new file in `workdir`; a `sqlite:///dir/name.db?options` URL becomes a new
    file beside it, `dir/name-TAG-RANDOM.db` with the same options, unless `reuse` (then the
    file itself, which keeps every run measured in it). Other URLs are used as they are.
    """
    if store in ("memory", "memory://"):
        return "memory://"
    if store == "sqlite":
        return store_url("sqlite", workdir, tag)
    if not store.startswith(_SQLITE) or reuse:
        return store
    rest, sep, query = store[len(_SQLITE) :].partition("?")
    folder, slash, name = rest.rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, "db"
    fresh = f"{stem}-{tag}-{uuid.uuid4().hex[:12]}.{suffix}"
    return f"{_SQLITE}{folder}{slash}{fresh}{sep}{query}"


def sqlite_path(url: str) -> Path | None:
    """The database file of a `sqlite:///path[?options]` URL; None for other URLs."""
    if not url.startswith(_SQLITE):
        return None
    return Path(unquote(url[len(_SQLITE) :].partition("?")[0]))


def remove_sqlite(url: str) -> None:
    """Delete a SQLite store's files (database, WAL, shared memory), if any."""
    path = sqlite_path(url)
    if path is None:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")


def unavailable(kind: str) -> str | None:
    """None if flowactor can open a store of `kind`, else a message saying why not.

    SQLite is probed through `runtime.stores.open_store`, so it works as soon as that does.
    """
    if kind == "memory":
        return None
    if kind != "sqlite":
        return f"unknown store {kind!r}: choose memory or sqlite"
    from runtime.stores import open_store

    with tempfile.TemporaryDirectory(prefix="flowactor-bench-probe-") as tmp:
        url = store_url("sqlite", tmp, "probe")
        try:
            open_store(url)
        except (ValueError, ImportError, NotImplementedError) as exc:
            return (
                "the SQLite store is not available in this flowactor yet "
                f"(runtime.stores.open_store({url!r}) said: {exc})"
            )
    return None
