"""White-box tests of runtime._abandon: driving a coroutine that may swallow cancellation."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from runtime._abandon import abandon_after_grace, abandoned_count

pytestmark = pytest.mark.anyio

GRACE = 0.1


async def swallower(seen: list[str]) -> None:
    """Catches everything in a loop with an await in it, GeneratorExit included."""
    while True:
        try:
            await anyio.sleep(0.01)
        except BaseException as exc:
            seen.append(type(exc).__name__)


async def swallows_cancels_only(seen: list[str]) -> None:
    """Swallows cancellation, but lets a close (GeneratorExit) through to its finally."""
    cancelled = anyio.get_cancelled_exc_class()
    try:
        while True:
            try:
                await anyio.sleep(0.01)
            except cancelled:
                seen.append("cancel")
    finally:
        seen.append("finally")


async def swallows_inside_its_own_scopes(seen: list[str]) -> None:
    """Swallows everything while inside cancel scopes of its own, which it never leaves."""
    with anyio.CancelScope(), anyio.move_on_after(3600):
        await swallower(seen)


async def test_a_coroutine_that_swallows_everything_is_given_up_after_the_grace() -> None:
    seen: list[str] = []
    before = abandoned_count()
    with anyio.fail_after(30), anyio.CancelScope() as scope:
        scope.deadline = anyio.current_time() + GRACE
        await abandon_after_grace(swallower(seen), scope, GRACE)
    assert scope.cancelled_caught
    assert seen.count("GeneratorExit") == 1  # it was closed once, and ignored that too
    assert abandoned_count() == before + 1  # kept suspended for ever, never finalized
    # The task's scope stack is intact: scopes and checkpoints work as before.
    with anyio.CancelScope():
        await anyio.lowlevel.checkpoint()


async def test_scopes_the_abandoned_coroutine_never_left_are_left_for_it() -> None:
    seen: list[str] = []
    with anyio.fail_after(30):
        with anyio.CancelScope() as outer:  # a scope of ours around the attempt's scope
            with anyio.CancelScope() as scope:
                scope.deadline = anyio.current_time() + GRACE
                await abandon_after_grace(swallows_inside_its_own_scopes(seen), scope, GRACE)
            assert scope.cancelled_caught
            await anyio.lowlevel.checkpoint()  # the attempt's scope is no longer in force
        assert not outer.cancelled_caught


async def test_a_coroutine_that_lets_the_close_through_is_closed_not_kept() -> None:
    seen: list[str] = []
    before = abandoned_count()
    with anyio.fail_after(30), anyio.CancelScope() as scope:
        scope.deadline = anyio.current_time() + GRACE
        await abandon_after_grace(swallows_cancels_only(seen), scope, GRACE)
    assert scope.cancelled_caught
    assert seen[-1] == "finally" and "cancel" in seen
    assert abandoned_count() == before


async def test_cancellations_the_coroutine_asks_for_itself_are_not_counted() -> None:
    """A loop of its own timeouts, caught, for longer than the grace: none of our business."""

    async def polls() -> int:
        caught = 0
        while caught < 3:
            with anyio.move_on_after(GRACE) as own:
                await anyio.sleep_forever()
            caught += own.cancelled_caught
        return caught

    with anyio.fail_after(30), anyio.CancelScope() as scope:
        assert await abandon_after_grace(polls(), scope, GRACE / 10) == 3
    assert not scope.cancelled_caught


async def test_a_cooperative_coroutine_is_cancelled_at_once() -> None:
    seen: list[str] = []

    async def cooperative() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            seen.append("finally")

    with anyio.fail_after(30), anyio.CancelScope() as scope:
        scope.cancel()
        await abandon_after_grace(cooperative(), scope, 3600)  # no grace is waited out
    assert scope.cancelled_caught and seen == ["finally"]


async def test_values_and_errors_come_through_unchanged() -> None:
    async def value(x: Any) -> Any:
        await anyio.lowlevel.checkpoint()
        return x

    async def raises() -> None:
        await anyio.lowlevel.checkpoint()
        raise LookupError("nope")

    with anyio.CancelScope() as scope:
        assert await abandon_after_grace(value(5), scope, GRACE) == 5
        with pytest.raises(LookupError, match="nope"):
            await abandon_after_grace(raises(), scope, GRACE)


async def test_a_cancellation_swallowed_once_then_finishing_is_not_given_up() -> None:
    async def swallows_once() -> str:
        try:  # noqa: SIM105 - the hostile code as users write it
            await anyio.sleep_forever()
        except BaseException:
            pass
        return "finished"

    with anyio.fail_after(30), anyio.CancelScope() as scope:
        scope.cancel()
        assert await abandon_after_grace(swallows_once(), scope, 3600) == "finished"
