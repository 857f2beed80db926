"""Process-wide defaults: the store `Runtime()` and direct flow calls use when given none.

`FLOWACTOR_STORE` (a store URL) if set, else `sqlite:///$FLOWACTOR_HOME/runs.db`, the home
defaulting to `~/.flowactor` (created on first use).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .stores import Store, open_store

__all__ = ["default_store", "default_store_url", "flowactor_home"]

_lock = threading.Lock()  # one store per URL even if first used from two threads at once
_stores: dict[str, Store] = {}


def flowactor_home() -> Path:
    """`$FLOWACTOR_HOME`, or `~/.flowactor`."""
    return Path(os.environ.get("FLOWACTOR_HOME") or "~/.flowactor").expanduser()


def default_store_url() -> str:
    """The URL of the default store, from the environment as it is now."""
    url = os.environ.get("FLOWACTOR_STORE")
    if url:
        return url
    return f"sqlite:///{flowactor_home() / 'runs.db'}"


def default_store() -> Store:
    """The process-wide store for the current default URL (one object per URL, shared)."""
    url = default_store_url()
    with _lock:
        store = _stores.get(url)
        if store is None:
            if not os.environ.get("FLOWACTOR_STORE"):
                flowactor_home().mkdir(parents=True, exist_ok=True)
            store = _stores[url] = open_store(url)
        return store
