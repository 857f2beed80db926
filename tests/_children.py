"""Child processes of the SQLite tests: the script they run, and reading what they print."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.abc

CHILD = Path(__file__).with_name("_sqlite_child.py")


async def read_until(child: anyio.abc.Process, marker: bytes) -> bytes:
    """What the child printed, up to `marker` or to its end."""
    assert child.stdout is not None
    buffer = b""
    while marker not in buffer:
        try:
            buffer += await child.stdout.receive()
        except anyio.EndOfStream:
            break
    return buffer


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll `check` until it is true (30 s at most, against a hang): another process's
    writes wake no event of ours."""
    with anyio.fail_after(30):
        while True:
            if await check():
                return
            await anyio.sleep(0.02)
