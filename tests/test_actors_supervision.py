"""What happens when an actor fails: Stop, Restart, Escalate, child task failures."""

from __future__ import annotations

import logging
from typing import ClassVar

import anyio
import pytest

from actors import (
    Actor,
    ActorFailed,
    ActorStopped,
    ActorSystem,
    Escalate,
    Restart,
    Stop,
    Supervision,
)

pytestmark = pytest.mark.anyio


class Counter(Actor[str]):
    """Counts messages; "fail" raises. Records every start and stop."""

    starts: ClassVar[list[int]] = []
    stops: ClassVar[list[int]] = []

    def __init__(self) -> None:
        self.count = 0

    async def on_start(self) -> None:
        Counter.starts.append(id(self))

    async def receive(self, message: str) -> object:
        if message == "fail":
            raise ValueError("handler failed")
        self.count += 1
        return self.count

    async def on_stop(self) -> None:
        Counter.stops.append(id(self))


@pytest.fixture(autouse=True)
def _reset_counter() -> None:
    Counter.starts = []
    Counter.stops = []


async def test_stop_stops_the_failed_actor_only(caplog: pytest.LogCaptureFixture) -> None:
    async with ActorSystem() as system:
        failing = system.spawn(Counter, supervision=Stop())
        sibling = system.spawn(Counter)
        with caplog.at_level(logging.ERROR, logger="actors"):
            with pytest.raises(ValueError, match="handler failed"):
                await failing.ask("fail")
            await failing.join()
        assert not failing.is_alive
        with pytest.raises(ActorStopped):
            await failing.tell("hello")
        with pytest.raises(ActorStopped):
            await failing.ask("hello")
        assert await sibling.ask("hello") == 1
    assert any("failed" in record.getMessage() for record in caplog.records)
    assert len(Counter.stops) == 2


async def test_restart_gives_fresh_state_until_the_budget_is_spent() -> None:
    async with ActorSystem() as system:
        ref = system.spawn(Counter, supervision=Restart(max_restarts=2, within=1000))
        assert await ref.ask("a") == 1
        assert await ref.ask("b") == 2
        for _ in range(2):
            with pytest.raises(ValueError):
                await ref.ask("fail")
            assert await ref.ask("a") == 1  # a fresh instance, same mailbox
        with pytest.raises(ValueError):
            await ref.ask("fail")  # third failure within the window: stop
        await ref.join()
        with pytest.raises(ActorStopped):
            ref.tell_nowait("a")
    assert len(Counter.starts) == 3
    assert Counter.stops == Counter.starts  # on_stop ran on every failed instance


async def test_restart_keeps_queued_messages() -> None:
    gate = anyio.Event()

    class Worker(Counter):
        async def receive(self, message: str) -> object:
            if message == "fail":
                await gate.wait()
            return await super().receive(message)

    async with ActorSystem() as system:
        ref = system.spawn(Worker, supervision=Restart())
        ref.tell_nowait("fail")
        await anyio.wait_all_tasks_blocked()
        ref.tell_nowait("x")
        ref.tell_nowait("y")
        gate.set()
        assert await ref.ask("z") == 3


async def test_restart_then_escalate() -> None:
    with pytest.raises(ActorFailed) as caught:
        async with ActorSystem() as system:
            ref = system.spawn(
                Counter, name="c", supervision=Restart(max_restarts=0, then=Escalate())
            )
            await ref.tell("fail")
            await anyio.sleep_forever()
    assert caught.value.actor_name == "c"
    assert isinstance(caught.value.__cause__, ValueError)


async def test_escalate_fails_the_system_and_runs_every_on_stop() -> None:
    class Fragile(Counter):
        supervision: ClassVar[Supervision] = Escalate()

    with pytest.raises(ActorFailed) as caught:
        async with ActorSystem() as system:
            system.spawn(Counter)
            ref = system.spawn(Fragile, name="fragile")
            await ref.tell("fail")
            await anyio.sleep_forever()
    assert caught.value.actor_name == "fragile"
    assert isinstance(caught.value.__cause__, ValueError)
    assert str(caught.value.__cause__) == "handler failed"
    assert len(Counter.stops) == 2


async def test_a_failing_child_task_goes_to_supervision() -> None:
    class Parent(Counter):
        async def on_start(self) -> None:
            await super().on_start()
            self.start_soon(self.child)

        async def child(self) -> None:
            if len(Counter.starts) == 1:
                raise RuntimeError("child failed")
            await anyio.sleep_forever()

    async with ActorSystem() as system:
        ref = system.spawn(Parent, supervision=Restart())
        await anyio.wait_all_tasks_blocked()
        assert len(Counter.starts) == 2  # restarted after the child failed
        assert len(Counter.stops) == 1
        assert await ref.ask("hello") == 1


async def test_a_failing_child_task_with_stop_stops_the_actor() -> None:
    class Parent(Counter):
        async def receive(self, message: str) -> object:
            self.start_soon(self.child)
            return None

        async def child(self) -> None:
            raise RuntimeError("child failed")

    async with ActorSystem() as system:
        ref = system.spawn(Parent)
        await ref.tell("go")
        await ref.join()
        assert len(Counter.stops) == 1


async def test_failing_on_start_is_a_failure() -> None:
    class BadStart(Counter):
        async def on_start(self) -> None:
            await super().on_start()
            raise ValueError("no start")

    async with ActorSystem() as system:
        ref = system.spawn(BadStart)
        await ref.join()
    assert len(Counter.stops) == 1  # on_stop still ran


async def test_keyboard_interrupt_propagates_after_on_stop() -> None:
    class Interrupted(Counter):
        async def receive(self, message: str) -> object:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        async with ActorSystem() as system:
            system.spawn(Counter)
            ref = system.spawn(Interrupted, supervision=Restart())
            await ref.tell("x")
            await anyio.sleep_forever()
    assert len(Counter.stops) == 2
