"""Stores: where runs and their histories live, chosen by URL."""

from __future__ import annotations

from .base import Store
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore", "Store", "open_store"]


def open_store(store: str | Store) -> Store:
    """A store object for a URL (`memory://`, `sqlite:///path`), or the store given."""
    if not isinstance(store, str):
        if not isinstance(store, Store):
            raise TypeError(f"expected a store URL or a Store, got {type(store).__name__}")
        return store
    scheme = store.partition("://")[0]
    if store == "memory://":
        return MemoryStore()
    if scheme == "sqlite":
        return SQLiteStore.from_url(store)
    raise ValueError(
        f"unsupported store URL {store!r}: expected 'memory://' or 'sqlite:///path' "
        f"(scheme {scheme!r} is not available)"
    )
