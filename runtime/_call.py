"""Calling a flow directly (`my_flow(x)`, `await my_async_flow(x)`) and mapping it
(`await my_flow.map([1, 2, 3])`), as in Prefect."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import RuntimeClosed
from .flow_engine import run_flow
from .flows import install_caller, unmapped
from .parameters import bind_parameters
from .runtime import Bound, current_runtime

if TYPE_CHECKING:
    from .flows import Flow
    from .handle import FlowRunHandle

__all__ = ["call_flow", "map_flow"]


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


async def map_flow(
    flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[FlowRunHandle]:
    """Submit one run per element of the mapped arguments on the ambient runtime."""
    rt = current_runtime()
    if rt is None:
        raise RuntimeClosed("flow.map() needs an open Runtime (async with Runtime() ...)")
    mapped = {key: value for key, value in enumerate(args) if _is_mapped(value)}
    mapped_kw = {key: value for key, value in kwargs.items() if _is_mapped(value)}
    lengths = {len(_as_list(v)) for v in (*mapped.values(), *mapped_kw.values())}
    if len(lengths) > 1:
        raise ValueError(f"flow.map() got iterables of different lengths: {sorted(lengths)}")
    if not lengths:
        raise ValueError("flow.map() needs at least one iterable argument to map over")
    (length,) = lengths
    columns = {key: _as_list(value) for key, value in mapped.items()}
    kw_columns = {key: _as_list(value) for key, value in mapped_kw.items()}
    items = []
    for i in range(length):
        call_args = tuple(columns[k][i] if k in columns else _static(v) for k, v in enumerate(args))
        call_kwargs = {
            k: kw_columns[k][i] if k in kw_columns else _static(v) for k, v in kwargs.items()
        }
        items.append(bind_parameters(flow.fn, call_args, call_kwargs))
    return await rt.submit_many(flow, [Bound(p) for p in items])


def _is_mapped(value: Any) -> bool:
    if isinstance(value, unmapped | str | bytes | Mapping):
        return False
    return isinstance(value, Iterable)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else list(value)


def _static(value: Any) -> Any:
    return value.value if isinstance(value, unmapped) else value


install_caller(call_flow, map_flow)
