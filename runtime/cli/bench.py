"""`flowactor bench TARGET`: measure your flow; `flowactor bench --suite`: the project's own."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from ..bench import BACKENDS, BenchError, load_target, measure_flow
from ..parameters import parameters_from_text
from ._common import TARGET_HELP, BadInput, param_option

__all__ = ["bench"]

_SUITE = "flowactor.bench.suite"  # ctx.meta key: the arguments that go to the harness
_CHECKOUT = Path(__file__).resolve().parents[2]  # holds benchmarks/ in a source checkout

EPILOG = f"""\b
{TARGET_HELP}

\b
Each round runs in a fresh process: a warm-up batch (excluded), then --runs runs, at most
--concurrency in flight at once; figures are the median (min-max) over --rounds rounds, run
counts the totals. Latency runs from submit to final state; memory per concurrent run is
(peak RSS - RSS before the batch) / most runs in flight at once. With --cancel-after, every
run still in flight then is cancelled at once: the time until all are final (Cancelled and
persisted), and per run p50 / p99. A SQLite --store gets a fresh file per round (beside the
one named, deleted afterwards) unless --reuse-store.

\b
Exit status: 0 every run of every round ended Completed (Cancelled with --cancel-after),
1 otherwise (the table and JSON are written all the same), 2 bad input.

\b
flowactor bench --suite [SCENARIO...] [OPTIONS]   (or flowactor bench with no arguments)
runs the project's own scenarios from a source checkout; everything after --suite goes to
the harness: flowactor bench --suite --help lists them.
"""


class _BenchCommand(click.Command):
    """`bench`, which hands `--suite ...` (or no arguments at all) to the project's harness."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] == "--suite":
            ctx.meta[_SUITE] = list(args[1:])
            return []
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        if _SUITE in ctx.meta:
            return _suite(ctx.meta[_SUITE])
        return super().invoke(ctx)


def _suite(args: list[str]) -> int:
    """`python -m benchmarks ARGS` from the checkout this flowactor was installed from."""
    if not (_CHECKOUT / "benchmarks" / "__init__.py").is_file():
        raise BadInput(
            "the project's own scenarios (flowactor bench with no TARGET, or --suite) need a "
            "source checkout of flowactor; to measure your flow: flowactor bench "
            "path/to/file.py:flow"
        )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_CHECKOUT), env.get("PYTHONPATH")) if p)
    return subprocess.call([sys.executable, "-m", "benchmarks", *args], env=env)


def _positive(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None and value < 1:
        raise click.BadParameter(f"must be at least 1, got {value}")
    return value


@click.command(cls=_BenchCommand, epilog=EPILOG)
@click.argument("target")
@param_option()
@click.option(
    "--runs",
    type=int,
    default=1000,
    show_default=True,
    callback=_positive,
    metavar="N",
    help="Runs measured per round.",
)
@click.option(
    "--concurrency",
    type=int,
    default=None,
    callback=_positive,
    metavar="C",
    help="Most runs in flight at once  [default: N, all at once]",
)
@click.option(
    "--rounds",
    type=int,
    default=3,
    show_default=True,
    callback=_positive,
    metavar="K",
    help="Rounds per backend, each in a fresh process.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=None,
    metavar="W",
    help="Runs before each round, not measured  [default: min(N, C, 100)]",
)
@click.option(
    "--store",
    default="memory",
    show_default=True,
    metavar="URL|memory|sqlite",
    help="Store: memory, sqlite (a temporary file) or a store URL.",
)
@click.option(
    "--reuse-store",
    is_flag=True,
    help="Use the SQLite file named by --store itself, not a fresh one per round.",
)
@click.option(
    "--backend",
    "backends",
    type=click.Choice([*BACKENDS, "all"]),
    multiple=True,
    help="Event loop; repeatable; all = every one installed  [default: asyncio]",
)
@click.option(
    "--cancel-after",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Cancel every run still in flight after this long, and time it.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write every figure, machine and versions to FILE.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.png",
    help="Draw a chart (needs matplotlib: pip install 'flowactor[bench]').",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="Kill a round that takes longer.",
)
@click.option(
    "--in-process",
    is_flag=True,
    help="Measure in this process (debugging; memory figures then mean little).",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option(
    "--suite",
    is_flag=True,
    help="Run the project's own scenarios instead (must come first; see below).",
)
def bench(
    target: str,
    params: dict[str, str],
    runs: int,
    concurrency: int | None,
    rounds: int,
    warmup: int | None,
    store: str,
    reuse_store: bool,
    backends: tuple[str, ...],
    cancel_after: float | None,
    json_path: Path | None,
    plot: Path | None,
    timeout: float,
    in_process: bool,
    no_progress: bool,
    suite: bool,
) -> int:
    """Measure a flow: runs/s, latency, final states, memory, and cancellation.

    From an installed flowactor, on asyncio, uvloop or trio (or all side by side).
    """
    if suite:
        raise BadInput("--suite must come first: flowactor bench --suite [SCENARIO...] [OPTIONS]")
    if plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise BadInput("--plot needs matplotlib: pip install 'flowactor[bench]'")
    try:
        flow, entrypoint = load_target(target)
        result = measure_flow(
            flow,
            parameters_from_text(flow.fn, params),
            entrypoint=entrypoint,
            runs=runs,
            concurrency=concurrency,
            rounds=rounds,
            warmup=warmup,
            backend=list(backends) or "asyncio",
            store=store,
            reuse_store=reuse_store,
            cancel_after=cancel_after,
            isolate=not in_process,
            timeout=timeout,
            progress=not no_progress,
        )
    except BenchError as exc:
        raise BadInput(str(exc)) from exc
    result.print_table()
    if json_path is not None:
        result.write_json(json_path, argv=sys.argv)
        print(f"results: {json_path}")
    if plot is not None:
        result.write_plot(plot)
        print(f"chart: {plot}")
    return 0 if result.ok else 1
