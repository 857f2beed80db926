"""Runs that swallow cancellation, at full size: the runtime and the event loop still finish.

    python -m benchmarks.hostile [--runs 5000] [--grace 1.0] [--backend asyncio|uvloop|trio]
                                 [--store memory://|sqlite:///path/runs.db]

N running runs, one in ten catching BaseException in a loop with an await in it, ended three
ways in turn: `rt.shutdown(cancel=True)` (all must end Cancelled), the app cancelling the scope
around the Runtime (all Crashed), and a `timeout_seconds` on the swallowing flow (TimedOut).
Each prints how long the ending took against `cancel_grace`, and checks the states the store
holds. The process then exits only if the event loop finished: abandoned attempts hold nothing.
(The test suite checks the same with N = 200; this is the issue's full size.)
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
import time
from typing import Any

import anyio

from runtime import Runtime, StateType, flow

from .loops import run as run_on


class _Started:
    """Counts runs that began; wakes the driver once all have (made inside the loop)."""

    def __init__(self, expected: int) -> None:
        self.expected, self.count, self.all_in = expected, 0, anyio.Event()

    def arrive(self) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.all_in.set()


_started: _Started | None = None


def _arrive() -> None:
    assert _started is not None
    _started.arrive()


async def _swallow() -> None:
    while True:
        try:  # noqa: SIM105 - the hostile code as users write it
            await anyio.sleep(0.1)
        except BaseException:  # the hostile part: every cancellation, and the close, swallowed
            pass


@flow
async def polite(i: int) -> None:
    _arrive()
    await anyio.sleep_forever()


@flow
async def swallows(i: int) -> None:
    _arrive()
    await _swallow()


@flow(timeout_seconds=1)
async def swallows_with_timeout(i: int) -> None:
    _arrive()
    await _swallow()


async def _start(rt: Runtime, runs: int, hostile: Any) -> list[Any]:
    global _started
    _started = _Started(runs)
    handles = [await rt.submit(hostile if i % 10 == 0 else polite, i) for i in range(runs)]
    await _started.all_in.wait()
    return handles


async def _states(rt: Runtime, handles: list[Any]) -> collections.Counter[StateType]:
    return collections.Counter([(await rt.store.read_flow_run(h.id)).state.type for h in handles])


def _named(states: collections.Counter[StateType]) -> dict[str, int]:
    return {t.value: n for t, n in states.items()}


async def measure(args: argparse.Namespace) -> bool:
    ok = True
    settings = {"store": args.store, "cancel_grace": args.grace}

    async with Runtime(**settings) as rt:
        handles = await _start(rt, args.runs, swallows)
        began = time.monotonic()
        await rt.shutdown(cancel=True)
    took = time.monotonic() - began
    states = await _states(rt, handles)
    ok &= states == {StateType.CANCELLED: args.runs}
    print(f"shutdown(cancel=True): {took:6.2f} s (grace {args.grace:g} s)  {_named(states)}")

    with anyio.CancelScope() as app:
        async with Runtime(**settings) as rt:
            handles = await _start(rt, args.runs, swallows)
            began = time.monotonic()
            app.cancel()
            await anyio.sleep_forever()
    took = time.monotonic() - began
    states = await _states(rt, handles)
    ok &= states == {StateType.CRASHED: args.runs}
    print(f"app cancels the scope: {took:6.2f} s (grace {args.grace:g} s)  {_named(states)}")

    async with Runtime(**settings) as rt:
        handles = await _start(rt, args.runs, swallows_with_timeout)
        began = time.monotonic()
        for h in handles[::10]:
            await h.wait()
        timed_out = time.monotonic() - began
        await rt.shutdown(cancel=True)
    hostile = [(await rt.store.read_flow_run(h.id)).state for h in handles[::10]]
    names = collections.Counter(s.name for s in hostile if s is not None)
    ok &= names == {"TimedOut": len(handles[::10])}
    print(f"timeout_seconds=1:     {timed_out:6.2f} s to end them all  {dict(names)}")
    return ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hostile", description=__doc__)
    parser.add_argument("--runs", type=int, default=5_000)
    parser.add_argument("--grace", type=float, default=1.0)
    parser.add_argument("--backend", choices=("asyncio", "uvloop", "trio"), default="asyncio")
    parser.add_argument("--store", default="memory://")
    args = parser.parse_args(argv)
    # One warning per abandoned run and one error per timed-out one: thousands of lines here.
    logging.getLogger("flowactor").setLevel(logging.CRITICAL)
    ok = run_on(measure, args, backend=args.backend)
    print("event loop finished;", "PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
