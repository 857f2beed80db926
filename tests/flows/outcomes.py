"""Flows for subprocess result tests: one per way a run can end, plus env and parent probes."""

from __future__ import annotations

import os
from typing import Any

import anyio

from runtime import flow, get_run_context, suspend_flow_run
from runtime.flow_engine import run_flow_in_subprocess


class Interrupted(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


@flow(persist_result=True)
async def pair(x: int, name: str) -> tuple[int, str]:
    return x, name


@flow
async def raises() -> None:
    raise ValueError("child failed")


@flow
async def interrupted() -> None:
    raise Interrupted("child interrupted")


@flow
async def suspends() -> None:
    await suspend_flow_run()


@flow(persist_result=True)
async def env_of(keys: list[str]) -> dict[str, Any]:
    return {key: os.environ.get(key) for key in keys}


@flow(persist_result=True, tags=["inner"])
async def own_tags() -> list[str]:
    return list(get_run_context().flow_run.tags)


@flow(tags=["outer"])
async def starts_a_child(store: str) -> tuple[str, int | None]:
    process = run_flow_in_subprocess(own_tags, store=store)
    await anyio.to_thread.run_sync(process.join, 60)
    return str(process.flow_run_id), process.exitcode  # type: ignore[attr-defined]
