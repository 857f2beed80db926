"""The `flowactor` command line: run a flow and report how it ended."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import anyio

from .loading import load_flow_from_entrypoint
from .parameters import parameters_from_text
from .runtime import Runtime

__all__ = ["main"]


def _parse_param(text: str) -> tuple[str, str]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, raw  # read as JSON or text once the flow's type hints are known


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowactor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a flow once and print its final state and result")
    run.add_argument("entrypoint", help="'package.module:flow' or 'path/to/file.py:flow'")
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        type=_parse_param,
        metavar="KEY=VALUE",
        help="a flow parameter (VALUE is JSON, or else a string, validated against the "
        "flow's type hints); repeatable",
    )
    run.add_argument(
        "--store",
        default=None,
        help="store URL (default: $FLOWACTOR_STORE, else $FLOWACTOR_HOME/runs.db)",
    )
    run.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    return parser


async def _run(entrypoint: str, params: dict[str, str], store: str | None) -> int:
    flow = load_flow_from_entrypoint(entrypoint)
    async with Runtime() if store is None else Runtime(store=store) as rt:
        handle = await rt.submit(flow, **parameters_from_text(flow.fn, params))
        state = await handle.wait()
        states = await rt.read_states(handle.id)
    print(f"flow run {handle.flow_run.name!r} ({handle.id})")
    print("states: " + " -> ".join(s.name for s in states))
    if state.is_completed():
        print(f"result: {await handle.result()!r}")
        return 0
    print(f"{state.name}: {state.message}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `flowactor` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # `flowactor bench ARGS` is `python -m benchmarks ARGS`
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a source checkout
        try:
            from benchmarks.cli import main as bench_main
        except ImportError as exc:
            print(f"flowactor bench: needs the benchmarks/ of a checkout ({exc})", file=sys.stderr)
            return 2
        return bench_main(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return anyio.run(_run, args.entrypoint, dict(args.param), args.store, backend=args.backend)
    except (ImportError, FileNotFoundError, AttributeError, TypeError, ValueError) as exc:
        print(f"flowactor: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
