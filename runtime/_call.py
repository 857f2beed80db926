"""Calling a flow directly: `my_flow(x)` / `await my_async_flow(x)`, as in Prefect."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .flow_engine import run_flow
from .flows import install_caller
from .parameters import bind_parameters

if TYPE_CHECKING:
    from .flows import Flow

__all__ = ["call_flow"]


def call_flow(flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Bind the call and dispatch it through `flow_engine.run_flow`.

    `return_state=True` and `wait_for=[handles]` are taken by the call, as in Prefect. Async
    flows give a coroutine, generator flows an iterator, sync flows run now.
    """
    return_state = bool(kwargs.pop("return_state", False))
    wait_for = kwargs.pop("wait_for", None)
    parameters = bind_parameters(flow.fn, args, kwargs)
    return run_flow(
        flow,
        parameters=parameters,
        wait_for=wait_for,
        return_type="state" if return_state else "result",
    )


install_caller(call_flow)
