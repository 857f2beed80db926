"""Running a coroutine function on a named backend: asyncio, asyncio + uvloop, or trio.

uvloop is chosen through anyio's own backend option, so flowactor code never sees it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from .model import BACKENDS

__all__ = ["available", "run"]

T = TypeVar("T")

_MODULE = {"asyncio": "asyncio", "uvloop": "uvloop", "trio": "trio"}


def available(backend: str) -> str | None:
    """None if `backend` can run here, else why not."""
    if backend not in BACKENDS:
        return f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})"
    if importlib.util.find_spec(_MODULE[backend]) is None:
        return f"{_MODULE[backend]} is not installed (pip install {_MODULE[backend]})"
    return None


def run(fn: Callable[..., Awaitable[T]], *args: Any, backend: str) -> T:
    """`anyio.run(fn, *args)` on `backend`."""
    problem = available(backend)
    if problem is not None:
        raise RuntimeError(f"cannot run on {backend}: {problem}")
    if backend == "uvloop":
        return anyio.run(fn, *args, backend="asyncio", backend_options={"use_uvloop": True})
    return anyio.run(fn, *args, backend=backend)
