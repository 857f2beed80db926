"""Helpers shared by the test modules: reading a run's history, waiting on worker threads,
making a file unwritable."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from runtime import Runtime

__all__ = ["names", "unwritable", "wait_thread"]


async def names(rt: Runtime, run_id: uuid.UUID) -> list[str]:
    """The names of a run's states, oldest first."""
    return [s.name for s in await rt.read_states(run_id)]


async def wait_thread(event: threading.Event) -> None:
    """Wait (off the event loop) for a worker thread to signal; fail rather than hang."""
    assert await anyio.to_thread.run_sync(event.wait, 10), "the thread never got there"


def _chattr(flag: str, path: Path) -> bool:
    try:
        done = subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)
    except OSError:  # no chattr here
        return False
    return done.returncode == 0


@contextlib.contextmanager
def unwritable(path: Path, *, immutable: bool = False) -> Iterator[None]:
    """Make the file or directory `path` unwritable for this process, even as root.

    `chattr +i` where the platform allows it (root on ext4, xfs, btrfs: root ignores
    permissions, not the immutable flag); else, for a user other than root, no write
    permission (`immutable=True` asks for the flag itself: a file already open for writing
    stays writable through that descriptor whatever its mode). Skips the test otherwise.
    """
    if _chattr("+i", path):
        try:
            yield
        finally:
            _chattr("-i", path)
        return
    if immutable or os.geteuid() == 0:
        pytest.skip("needs `chattr +i` (root, or CAP_LINUX_IMMUTABLE, on a file system with it)")
    mode = path.stat().st_mode
    path.chmod(mode & ~0o222)
    try:
        yield
    finally:
        path.chmod(mode)
