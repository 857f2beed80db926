"""What the actor structure alone costs, with none of flowactor's code: the floor under the floor.

    python -m benchmarks.skeleton [--runs 10000] [--rounds 3] [--backend asyncio|uvloop|trio]

Four shapes, each N runs submitted from one loop (a checkpoint per submit, as `Runtime.submit`)
and then awaited, measured in turn in this process:

- `floor`: one plain anyio task per run that returns at once (the `floor` scenario's shape);
- `actor`: what every flow run needs by design, and nothing else: an actor task with its own
  task group and a memory-stream mailbox, a child task for the attempt that tells the actor
  its outcome through the mailbox, and an event for whoever waits for the end;
- `inline`: for comparison, an actor task and mailbox running the attempt in its own task
  under a cancel scope, with no task group and no child task (not DESIGN.md's structure);
- `flowactor`: a trivial flow run on the memory store.

The ratio actor / floor is the part of flowactor / floor that no change to flowactor's own code
can remove while each run is an actor task with a child task (DESIGN.md).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from runtime import Runtime, flow
from runtime.bench.loops import run as run_on


@flow
async def trivial(i: int) -> int:
    return i


async def floor_round(n: int) -> float:
    """Seconds for N plain tasks that return at once."""

    async def one() -> None:
        return None

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return time.perf_counter() - started


async def actor_round(n: int) -> float:
    """Seconds for N bare actors (task, task group, mailbox, child task, done event)."""

    async def actor(done: anyio.Event) -> None:
        send, receive = anyio.create_memory_object_stream[int](16)

        async def attempt() -> None:
            await send.send(1)  # the outcome, told to the actor

        with send, receive:  # closed when the actor ends, as a Mailbox is
            async with anyio.create_task_group() as children:
                children.start_soon(attempt)
                await receive.receive()
        done.set()

    return await _drive(actor, n)


async def inline_actor_round(n: int) -> float:
    """Seconds for N actors that run the attempt in their own task (no child task).

    Not what DESIGN.md prescribes: the shape a cancel would take if it cancelled the attempt's
    scope directly from the system lane, measured to show what the child task costs.
    """

    async def actor(done: anyio.Event) -> None:
        send, receive = anyio.create_memory_object_stream[int](16)
        with send, receive:
            send.send_nowait(1)  # Begin
            await receive.receive()
            with anyio.CancelScope():  # the attempt, cancellable on its own
                await anyio.lowlevel.checkpoint()  # the trivial flow's one await
        done.set()

    return await _drive(actor, n)


async def _drive(actor: Callable[[anyio.Event], Awaitable[None]], n: int) -> float:
    """Seconds to start N `actor`s from one loop (a checkpoint per submit, as `Runtime.submit`)
    and wait until each has set its done event."""

    async def submit(root: TaskGroup) -> anyio.Event:
        await anyio.lowlevel.checkpoint()
        done = anyio.Event()
        root.start_soon(actor, done)
        return done

    started = time.perf_counter()
    async with anyio.create_task_group() as root:
        events = [await submit(root) for _ in range(n)]
        for event in events:
            await event.wait()
    return time.perf_counter() - started


async def flowactor_round(n: int) -> float:
    """Seconds for N trivial flow runs on the memory store (the `throughput` shape)."""
    async with Runtime(store="memory://") as rt:
        started = time.perf_counter()
        handles = [await rt.submit(trivial, i) for i in range(n)]
        for handle in handles:
            await handle.result()
        return time.perf_counter() - started


SHAPES: dict[str, Callable[[int], Awaitable[float]]] = {
    "floor": floor_round,
    "actor": actor_round,
    "inline": inline_actor_round,
    "flowactor": flowactor_round,
}


async def measure(runs: int, rounds: int) -> dict[str, list[float]]:
    """µs per run of every shape, `rounds` times each (after one small warm-up round)."""
    figures: dict[str, list[float]] = {name: [] for name in SHAPES}
    for shape in SHAPES.values():
        await shape(min(runs, 1_000))
    for _ in range(rounds):
        for name, shape in SHAPES.items():
            gc.collect()
            figures[name].append(await shape(runs) / runs * 1e6)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.skeleton", description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=("asyncio", "uvloop", "trio"), default="asyncio")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.rounds < 1:
        parser.error("--runs and --rounds must be at least 1")
    figures = run_on(measure, args.runs, args.rounds, backend=args.backend)
    floor = statistics.median(figures["floor"])
    print(f"N = {args.runs:,}, {args.backend}, median of {args.rounds} rounds")
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"  {name:<10} {median:8.1f} µs per run  {median / floor:5.2f}x the floor")


if __name__ == "__main__":
    main()
