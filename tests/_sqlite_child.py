"""A child process for the SQLite store's tests: `python tests/_sqlite_child.py MODE DB [N]`.

- `park DB N [LEASE]`: start N async runs that park forever, print `RUNNING` once all N are
  Running, then wait to be killed (lease LEASE seconds, 1 by default).
- `steps DB`: run a flow that prints `STEP n` every 20 ms until it is stopped (its
  on_cancellation hook prints `HOOK`), after printing `RUN <id>`; once the run has ended,
  print `END <state name>`, wait 0.3 s (a flow still going would print steps meanwhile), print
  `EXIT` and exit.
- `term DB N [--app-handler] [--no-sigterm]`: complete one run (print `DONE <id>`), then
  start N parked runs whose on_crashed / on_cancellation hooks print `CRASHED i` /
  `CANCELLED i`; print `RUN i <id>` for each and `READY` once all are Running, then wait for
  a signal. The Runtime polls for cancel requests only every 60 s. `--app-handler`: the
  application installs a SIGTERM handler of its own first (it prints `APP`);
  `--no-sigterm`: the Runtime is opened with handle_sigterm=False.
- `results DB`: run flows that persist results (json, msgpack, pickle) and print
  `name=run_id` lines, then exit normally.
- `open DB`: print `READY`, read a start time (`time.time()`) from stdin, wait for it, then
  open a Runtime on DB (a new file, opened by several children at once), complete one run
  and print `DONE`.
- `unwritable DB SUFFIX`: complete a run, make the file DB+SUFFIX (`-shm`, say) unwritable
  while the Runtime is open, then print `READ <outcome>` for a read and `WRITE <outcome>` for
  more runs (`ok`, or `<error type>: <message>`), then `CLOSED` once the Runtime is closed
  (the file still unwritable); `UNSUPPORTED` if the file cannot be made unwritable here.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Awaitable
from pathlib import Path

import anyio
import pytest
from _helpers import unwritable  # run as a script: this directory is on sys.path

from runtime import FlowRun, Runtime, StoreError, flow


@flow
async def parked(i: int) -> None:
    _started[0] += 1
    if _started[0] == _wanted[0]:
        _all_running.set()
    await anyio.sleep_forever()


_started = [0]
_wanted = [0]
_all_running: anyio.Event


@flow(persist_result=True)
async def as_json() -> dict[str, object]:
    return {"answer": 42, "items": [1, 2.5, "three", None], "nested": {"ok": True}}


@flow(persist_result=True, result_serializer="msgpack")
async def as_msgpack() -> list[object]:
    return [b"\x00\x01bytes", 7, "text"]


@flow(persist_result=True, result_serializer="pickle")
async def as_pickle() -> object:
    return {"complex": complex(1, 2), "frozen": frozenset({1, 2})}


async def park(db: str, n: int, lease: float) -> None:
    global _all_running
    _all_running = anyio.Event()
    _wanted[0] = n
    async with Runtime(store=f"sqlite:///{db}", lease_seconds=lease) as rt:
        async with anyio.create_task_group() as tg:
            for part in range(10):
                tg.start_soon(_submit_range, rt, range(part, n, 10))
        await _all_running.wait()
        print("RUNNING", flush=True)
        await anyio.sleep_forever()


async def _submit_range(rt: Runtime, numbers: range) -> None:
    for i in numbers:
        await rt.submit(parked, i)


_say_lock = threading.Lock()


def _say(line: str) -> None:
    """Print a whole line at once: sync hooks run in threads of their own, side by side."""
    with _say_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _hook(flow: object, flow_run: object, state: object) -> None:
    _say("HOOK")


@flow(on_cancellation=[_hook])
async def steps() -> None:
    n = 0
    while True:
        n += 1
        _say(f"STEP {n}")
        await anyio.sleep(0.02)


async def run_steps(db: str) -> None:
    async with Runtime(store=f"sqlite:///{db}") as rt:
        h = await rt.submit(steps)
        print(f"RUN {h.id}", flush=True)
        state = await h.wait()
        print(f"END {state.name}", flush=True)
        await anyio.sleep(0.3)
        print("EXIT", flush=True)


def _crashed(flow: object, flow_run: FlowRun, state: object) -> None:
    _say(f"CRASHED {flow_run.parameters['i']}")


def _cancelled(flow: object, flow_run: FlowRun, state: object) -> None:
    _say(f"CANCELLED {flow_run.parameters['i']}")


@flow(on_crashed=[_crashed], on_cancellation=[_cancelled])
async def held(i: int) -> None:
    _started[0] += 1
    if _started[0] == _wanted[0]:
        _all_running.set()
    await anyio.sleep_forever()


async def term(db: str, n: int, handle_sigterm: bool) -> None:
    global _all_running
    _all_running = anyio.Event()
    _wanted[0] = n
    url = f"sqlite:///{db}"
    async with Runtime(store=url, cancel_poll_seconds=60, handle_sigterm=handle_sigterm) as rt:
        done = await rt.submit(opened)
        await done.result()
        print(f"DONE {done.id}", flush=True)
        for i in range(n):
            print(f"RUN {i} {(await rt.submit(held, i)).id}", flush=True)
        await _all_running.wait()
        print("READY", flush=True)
        await anyio.sleep_forever()


async def results(db: str) -> None:
    async with Runtime(store=f"sqlite:///{db}") as rt:
        for f in (as_json, as_msgpack, as_pickle):
            handle = await rt.submit(f)
            await handle.result()
            print(f"{f.name}={handle.id}", flush=True)


@flow
async def opened() -> int:
    return 1


async def open_together(db: str, start: float) -> None:
    # Spin rather than sleep: the children are all running, on every core, when the moment
    # comes, so their opens overlap (and one may be preempted holding the file's lock).
    while time.time() < start:
        pass
    async with Runtime(store=f"sqlite:///{db}") as rt:
        assert await (await rt.submit(opened)).result() == 1
    print("DONE", flush=True)


async def run_unwritable(db: str, suffix: str) -> None:
    try:
        async with contextlib.AsyncExitStack() as stack:
            rt = await stack.enter_async_context(Runtime(store=f"sqlite:///{db}"))
            first = await rt.submit(opened)
            assert await first.result() == 1
            stack.enter_context(unwritable(Path(db + suffix)))  # left after the Runtime
            print(f"READ {await _outcome(rt.read_flow_run(first.id))}", flush=True)
            # Enough writes for SQLite to touch every page of the -shm mapping again.
            print(f"WRITE {await _outcome(_complete_runs(rt, 200))}", flush=True)
        print("CLOSED", flush=True)  # closing the store did not crash the process either
    except pytest.skip.Exception:
        print("UNSUPPORTED", flush=True)


async def _complete_runs(rt: Runtime, n: int) -> None:
    for _ in range(n):
        await (await rt.submit(opened)).result()


async def _outcome(call: Awaitable[object]) -> str:
    """`ok`, or the store error the call raised (type and message)."""
    try:
        await call
    except StoreError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def main() -> None:
    mode, db = sys.argv[1], sys.argv[2]
    backend = "trio" if "--trio" in sys.argv else "asyncio"
    if mode == "park":
        lease = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4][0].isdigit() else 1.0
        anyio.run(park, db, int(sys.argv[3]), lease, backend=backend)
    elif mode == "term":
        if "--app-handler" in sys.argv:
            signal.signal(signal.SIGTERM, lambda signum, frame: print("APP", flush=True))
        handle_sigterm = "--no-sigterm" not in sys.argv
        anyio.run(term, db, int(sys.argv[3]), handle_sigterm, backend=backend)
    elif mode == "steps":
        anyio.run(run_steps, db, backend=backend)
    elif mode == "results":
        anyio.run(results, db, backend=backend)
    elif mode == "open":
        print("READY", flush=True)
        start = float(sys.stdin.readline())  # a moment on the wall clock, the same for all
        anyio.run(open_together, db, start, backend=backend)
    elif mode == "unwritable":
        anyio.run(run_unwritable, db, sys.argv[3], backend=backend)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
