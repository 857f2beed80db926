"""submit_many and flow.map: many runs created per store write, through the public API."""

from __future__ import annotations

import pytest

from runtime import ParameterTypeError, Runtime, flow, unmapped
from tests._helpers import names

pytestmark = pytest.mark.anyio


@flow
async def add(x: int, y: int = 0) -> int:
    return x + y


@pytest.mark.parametrize("store", ["memory://", "sqlite"])
async def test_submit_many_starts_one_run_per_item_in_order(store: str, tmp_path: object) -> None:
    url = store if store == "memory://" else f"sqlite:///{tmp_path}/runs.db"
    async with Runtime(store=url) as rt:
        handles = await rt.submit_many(add, [1, (2, 3), {"x": 4, "y": 5}])
        assert [await h.result() for h in handles] == [1, 5, 9]
        for h in handles:
            assert await names(rt, h.id) == ["Pending", "Running", "Completed"]
        many = await rt.submit_many(add, range(5000))  # more than one batch of 4,096
        assert [await h.result() for h in many] == list(range(5000))


async def test_submit_many_binds_every_item_before_creating_any_run() -> None:
    async with Runtime(store="memory://") as rt:
        with pytest.raises(ParameterTypeError):
            await rt.submit_many(add, [1, (1, 2, 3)])
        assert await rt.list_flow_runs() == []


async def test_a_run_of_submit_many_with_bad_parameters_fails_alone() -> None:
    async with Runtime(store="memory://") as rt:
        good, bad = await rt.submit_many(add, [1, "not a number"])
        assert await good.result() == 1
        assert (await bad.wait()).is_failed()
        assert await names(rt, bad.id) == ["Pending", "Failed"]


async def test_flow_map_zips_iterables_and_passes_unmapped_values() -> None:
    async with Runtime(store="memory://"):
        handles = await add.map([1, 2, 3], y=unmapped(10))
        assert [await h.result() for h in handles] == [11, 12, 13]
        handles = await add.map([1, 2], [5, 6])
        assert [await h.result() for h in handles] == [6, 8]
        with pytest.raises(ValueError, match="different lengths"):
            await add.map([1, 2], [1])
        with pytest.raises(ValueError, match="at least one iterable"):
            await add.map(1, y=2)


async def test_flow_map_needs_an_open_runtime() -> None:
    from runtime import RuntimeClosed

    with pytest.raises(RuntimeClosed):
        await add.map([1])
