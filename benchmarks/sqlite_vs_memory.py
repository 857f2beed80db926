"""10,000 trivial async runs on SQLite versus the memory store, measured in the same run.

    python -m benchmarks.sqlite_vs_memory [--runs 10000] [--rounds 3] [--backend asyncio]

Each round runs the same workload on every store, in turn, in this process: `--submitters`
tasks submit the runs concurrently, then every run is awaited; the figure is runs per second
from the first submit to the last final state (median and range over the rounds). SQLite files
are fresh per round, in a temporary directory.

`--store-only` leaves the Runtime out: `--submitters` tasks drive runs through the store API
directly (create, Running, Completed), which shows what the store itself can take.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import anyio

from runtime import Completed, FlowRun, Pending, Running, Runtime, flow, open_store


@flow
async def trivial(i: int) -> int:
    return i


async def one_round(store: str, runs: int, submitters: int) -> float:
    """Runs per second for `runs` trivial runs on `store`."""
    handles = []
    async with Runtime(store=store) as rt:

        async def submit_every(numbers: range) -> None:
            for i in numbers:  # one at a time: each submit waits for its own commit
                handle = await rt.submit(trivial, i)
                handles.append(handle)

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for part in range(submitters):
                tg.start_soon(submit_every, range(part, runs, submitters))
        for handle in handles:
            await handle.wait()
        elapsed = time.perf_counter() - started
    assert len(handles) == runs
    return runs / elapsed


async def store_round(url: str, runs: int, submitters: int) -> float:
    """Runs per second through the store API alone: three writes per run."""
    store = open_store(url)
    await store.open()
    try:

        async def drive(numbers: range) -> None:
            for i in numbers:
                run = await store.create_flow_run(
                    FlowRun(name=f"r{i}", flow_name="trivial", parameters={"i": i}, state=Pending())
                )
                await store.set_state(run.id, Running())
                await store.set_state(run.id, Completed(data=i))

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for part in range(submitters):
                tg.start_soon(drive, range(part, runs, submitters))
        return runs / (time.perf_counter() - started)
    finally:
        await store.close()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="flowactor-bench-") as tmp:
        stores: dict[str, str] = {
            "memory://": "memory://",
            "sqlite (synchronous=normal)": f"sqlite:///{tmp}/normal-{{round}}.db",
            "sqlite (synchronous=full)": f"sqlite:///{tmp}/full-{{round}}.db?synchronous=full",
        }
        measure = store_round if args.store_only else one_round
        await measure("memory://", min(args.runs, 1000), args.submitters)  # warm-up
        figures: dict[str, list[float]] = {name: [] for name in stores}
        for r in range(args.rounds):
            for name, url in stores.items():
                store = url.format(round=r)
                figures[name].append(await measure(store, args.runs, args.submitters))
    what = "store-only runs (3 writes each)" if args.store_only else "trivial async runs"
    print(
        f"{args.runs:,} {what}, {args.submitters} submitters, {args.backend}, "
        f"Python {sys.version.split()[0]}, median of {args.rounds} rounds (min-max):"
    )
    base = statistics.median(figures["memory://"])
    for name, values in figures.items():
        median = statistics.median(values)
        print(
            f"  {name:<28} {median:>8,.0f} runs/s  ({min(values):,.0f}-{max(values):,.0f})"
            f"  {median / base:.2f}x memory"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--submitters", type=int, default=50)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--store-only", action="store_true", help="no Runtime: the store API")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    anyio.run(main, arguments, backend=arguments.backend)
