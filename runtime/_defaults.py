"""Process-wide defaults: the store that direct flow calls use outside any Runtime."""

from __future__ import annotations

import threading

from .stores import MemoryStore, Store

__all__ = ["default_store"]

_lock = threading.Lock()  # one default store even if first used from two threads at once
_store: Store | None = None


def default_store() -> Store:
    """The process-wide store for runs started outside any Runtime (in memory for now)."""
    global _store
    with _lock:
        if _store is None:
            _store = MemoryStore()
        return _store
