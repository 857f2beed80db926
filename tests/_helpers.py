"""Helpers shared by the test modules: reading a run's history, waiting on worker threads."""

from __future__ import annotations

import threading
import uuid

import anyio
import anyio.to_thread

from runtime import Runtime

__all__ = ["names", "wait_thread"]


async def names(rt: Runtime, run_id: uuid.UUID) -> list[str]:
    """The names of a run's states, oldest first."""
    return [s.name for s in await rt.read_states(run_id)]


async def wait_thread(event: threading.Event) -> None:
    """Wait (off the event loop) for a worker thread to signal; fail rather than hang."""
    assert await anyio.to_thread.run_sync(event.wait, 10), "the thread never got there"
