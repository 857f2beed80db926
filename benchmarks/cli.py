"""The command line: `python -m benchmarks [SCENARIO...] [options]`, or `flowactor bench --suite`.

The measuring core (rounds in fresh processes, statistics, table, JSON, plot) is the installed
`runtime.bench`; this package holds the project's own scenarios on top of it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.util
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runtime.bench import loops, report
from runtime.bench.model import BACKENDS, STORES, ScenarioResult
from runtime.bench.plot import MissingExtra, write_plot
from runtime.bench.progress import progress_display
from runtime.bench.session import Session
from runtime.bench.stores import unavailable

from .config import Config
from .scenarios import SCENARIOS

__all__ = ["main", "parse_args"]

_ROOT = Path(__file__).resolve().parent.parent  # the folder holding the benchmarks package

EPILOG = """\
scenarios (default: all, in this order):
{scenarios}

Every round runs in a fresh process that warms up first (excluded); figures are the median
and min-max over --rounds rounds. Exit status: 0 when every run of every round completed,
1 if any did not (or, with --strict, if a target failed), 2 for a usage error.
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<11} {m.DESCRIPTION}" for name, m in SCENARIOS.items())
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="flowactor against the anyio floor, Prefect and DBOS, in one run.",
        epilog=EPILOG.format(scenarios=listing),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="scenarios to run")
    parser.add_argument(
        "--runs", type=_positive, metavar="N", help="one size N for every sized scenario"
    )
    parser.add_argument(
        "--rounds", type=_positive, help="measured rounds per case (default: 3; 1 with --smoke)"
    )
    parser.add_argument(
        "--store",
        action="append",
        choices=[*STORES, "all"],
        help="flowactor store (repeatable; all = memory and sqlite; default: every available)",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="asyncio", help="event loop")
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="results file (default: bench-<time>.json)"
    )
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="draw a chart (matplotlib)")
    parser.add_argument("--smoke", action="store_true", help="tiny N and 1 round, for CI")
    parser.add_argument(
        "--submitters",
        type=_positive,
        default=64,
        metavar="K",
        help="throughput on SQLite also measures K tasks sharing the submits (64; 1: not)",
    )
    parser.add_argument(
        "--prefect-runs", type=_positive, default=10, metavar="N", help="N for Prefect (10)"
    )
    parser.add_argument(
        "--dbos-runs", type=_positive, default=1_000, metavar="N", help="N for DBOS (1000)"
    )
    parser.add_argument(
        "--dbos-threads",
        type=_positive,
        default=64,
        metavar="K",
        help="DBOS's max_executor_threads (64)",
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds per measurement process (900)"
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=120.0,
        help="kill a measurement process whose progress has not moved for this long (120 s)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run rounds in this process (debugging; RSS figures then mean little)",
    )
    parser.add_argument("--profile", type=Path, metavar="DIR", help="cProfile each round to DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> tuple[Config, argparse.Namespace]:
    """The run's `Config` (and the raw arguments); exits with status 2 on a usage error."""
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS and s != "all"]
    if unknown:
        parser.error(
            f"unknown scenario(s): {', '.join(unknown)} (choose from {', '.join(SCENARIOS)})"
        )
    names = [s for s in args.scenarios if s != "all"]
    scenarios = (
        tuple(SCENARIOS) if not names or "all" in args.scenarios else tuple(dict.fromkeys(names))
    )
    if args.store is None:  # every store this flowactor has: each target's own store is measured
        stores = [s for s in STORES if unavailable(s) is None]
    else:
        stores = list(STORES) if "all" in args.store else list(dict.fromkeys(args.store))
    config = Config(
        scenarios=scenarios,
        runs=args.runs,
        rounds=args.rounds or (1 if args.smoke else 3),
        stores=tuple(stores),
        backend=args.backend,
        smoke=args.smoke,
        isolate=not args.in_process,
        progress=not args.no_progress,
        prefect_runs=args.prefect_runs,
        dbos_runs=args.dbos_runs,
        dbos_threads=args.dbos_threads,
        submitters=args.submitters,
        timeout=args.timeout,
        stall=args.stall,
        profile_dir=args.profile,
    )
    return config, args


def _preflight(config: Config, args: argparse.Namespace) -> str | None:
    """A clear message for whatever would make the run fail before it starts."""
    for store in config.stores:
        problem = unavailable(store)
        if problem is not None:
            return f"--store {store}: {problem}"
    problem = loops.available(config.backend)
    if problem is not None:
        return f"--backend {config.backend}: {problem}"
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        return str(MissingExtra("--plot needs matplotlib: pip install -e '.[bench]'"))
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected scenarios, print the table, write the JSON (and the plot)."""
    config, args = parse_args(argv)
    problem = _preflight(config, args)
    if problem is not None:
        print(f"benchmarks: {problem}", file=sys.stderr)
        return 2
    started = dt.datetime.now().astimezone()
    json_path = args.json or Path(f"bench-{started:%Y%m%d-%H%M%S}.json")
    clock = time.monotonic()
    source: dict[str, Any] = {
        "versions": report.versions(),
        "fingerprint_start": report.source_fingerprint(),
    }
    workdir = Path(tempfile.mkdtemp(prefix="flowactor-bench-"))
    config = dataclasses.replace(config, workdir=workdir)
    results: list[ScenarioResult] = []
    try:
        with progress_display(config.progress) as progress:
            session = Session(config, progress, pythonpath=[str(_ROOT)])
            for name in config.scenarios:
                if name == "prefect" and config.smoke and "prefect" not in args.scenarios:
                    results.append(
                        ScenarioResult(
                            name,
                            SCENARIOS[name].DESCRIPTION,
                            skipped="not in --smoke unless named (Prefect starts in ~15 s)",
                        )
                    )
                    continue
                results.append(SCENARIOS[name].run(session))
    except KeyboardInterrupt:
        print("benchmarks: interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - clock
    source["fingerprint_end"] = report.source_fingerprint()
    source["changed_during_run"] = source["fingerprint_end"] != source["fingerprint_start"]
    warnings = (
        ["flowactor's source (actors/, runtime/) changed while this run went on"]
        if source["changed_during_run"]
        else []
    )
    report.print_table(results, warnings=warnings)
    document = report.build_document(
        {**config.as_json(), "method": report.METHOD},
        results,
        argv=list(sys.argv if argv is None else argv),
        started=started,
        elapsed_s=elapsed,
        source=source,
    )
    report.write_json(document, json_path)
    print(f"results: {json_path}")
    if args.plot is not None:
        write_plot(document, args.plot)
        print(f"chart: {args.plot}")
    incomplete = any(not row.completed for r in results for row in r.rows)
    failed = any(not v.passed for r in results for v in r.verdicts)
    return 1 if incomplete or (args.strict and failed) else 0
