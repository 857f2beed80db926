"""Sync hooks run in daemon threads of their own: a hook that never returns is abandoned at
hook_timeout, and neither keeps the process alive nor takes threads the rest of the process
(anyio's default limiter, a store's reads) needs."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from runtime import Flow, FlowRun, Runtime, State, flow

pytestmark = pytest.mark.anyio

HANG = 60  # only against a hang


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """What hung hooks wait for: set when the test ends, so their threads end too."""
    event = threading.Event()
    yield event
    event.set()


async def test_a_sync_hook_runs_in_a_daemon_thread_with_the_run_context() -> None:
    seen: list[Any] = []

    def hook(f: Flow[..., Any], run: FlowRun, state: State) -> None:
        from runtime import get_run_context

        seen.append((threading.current_thread().daemon, get_run_context().flow_run.id))

    @flow(on_completion=[hook])
    async def ok() -> None:
        pass

    async with Runtime() as rt:
        h = await rt.submit(ok)
        await h.wait()
    assert seen == [(True, h.id)]


async def test_hooks_that_never_return_leave_anyio_threads_and_store_reads_alone(
    release: threading.Event,
) -> None:
    """More hung hooks than anyio's default thread limiter has tokens (40)."""
    hung = 45
    started = threading.Semaphore(0)

    def never_returns(f: Flow[..., Any], run: FlowRun, state: State) -> None:
        started.release()
        release.wait()

    @flow(on_completion=[never_returns])
    async def ok(i: int) -> int:
        return i

    with anyio.fail_after(HANG):
        async with Runtime(hook_timeout=0.2, thread_limit=hung) as rt:
            handles = [await rt.submit(ok, i) for i in range(hung)]
            for h in handles:
                assert (await h.wait()).is_completed()  # each hook abandoned at hook_timeout
            for _ in range(hung):  # every hook thread did start (and is still blocked)
                assert await anyio.to_thread.run_sync(started.acquire, True, 10)
            # anyio's own worker threads and the store still serve the process.
            assert await anyio.to_thread.run_sync(lambda: 5) == 5
            assert (await rt.read_flow_run(handles[-1].id)).state.is_completed()  # type: ignore[union-attr]


async def test_a_hook_that_cannot_get_a_thread_is_reported_not_silently_skipped(
    release: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[int] = []

    def never_returns(f: Flow[..., Any], run: FlowRun, state: State) -> None:
        release.wait()

    def records(f: Flow[..., Any], run: FlowRun, state: State) -> None:
        ran.append(1)

    @flow(on_completion=[never_returns])
    async def first() -> None:
        pass

    @flow(on_completion=[records])
    async def second() -> None:
        pass

    with (
        anyio.fail_after(HANG),
        caplog.at_level(logging.ERROR, logger="flowactor.engine"),
    ):
        async with Runtime(hook_timeout=0.2, thread_limit=1) as rt:
            await (await rt.submit(first)).wait()
            await (await rt.submit(second)).wait()
    assert ran == []
    messages = [record.getMessage() for record in caplog.records]
    assert any("'records' was not run" in m and "1 hook threads" in m for m in messages)


async def test_a_hung_sync_hook_lets_the_process_exit(anyio_backend: str) -> None:
    """In a process of its own: `anyio.run` returns and the interpreter exits."""
    script = Path(__file__).with_name("_hostile_child.py")
    with anyio.fail_after(HANG):
        done = await anyio.run_process(
            [sys.executable, str(script), anyio_backend, "hung-hook"], check=False
        )
    out = done.stdout.decode()
    assert done.returncode == 0, (out, done.stderr.decode()[-3000:])
    assert out.split() == ["hook-abandoned", "returned"]
