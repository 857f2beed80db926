"""`flowactor run TARGET`: run a flow once and report how it ended."""

from __future__ import annotations

import logging
import sys
from typing import Any

import anyio
import click

from .. import Runtime
from ..errors import StoreError
from ..flows import Flow
from ..loading import load_flow_from_entrypoint
from ..parameters import parameters_from_text
from ._common import TARGET_HELP, BadInput, param_option

__all__ = ["run"]


async def _run(flow: Flow[..., Any], params: dict[str, str], store: str | None) -> int:
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


@click.command(epilog=TARGET_HELP)
@click.argument("target")
@param_option()
@click.option(
    "--store",
    metavar="URL",
    default=None,
    help="Store URL (default: $FLOWACTOR_STORE, else $FLOWACTOR_HOME/runs.db).",
)
@click.option(
    "--backend",
    type=click.Choice(["asyncio", "trio"]),
    default="asyncio",
    show_default=True,
    help="Event loop.",
)
def run(target: str, params: dict[str, str], store: str | None, backend: str) -> int:
    """Run a flow once; print its state history and result.

    Exit status: 0 when the run completed, 1 when it did not, 2 for bad input (a target that
    does not load, parameters that do not fit, a store that cannot be opened).
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        flow = load_flow_from_entrypoint(target)
        code: int = anyio.run(_run, flow, params, store, backend=backend)
    except (ImportError, FileNotFoundError, AttributeError, TypeError, ValueError) as exc:
        raise BadInput(str(exc)) from exc
    except StoreError as exc:
        raise BadInput(str(exc)) from exc
    return code
