"""Delivering messages: order, one handler at a time, ask, system lane, child tasks."""

from __future__ import annotations

import anyio
import pytest

from actors import Actor, ActorSystem, AskTimeout

pytestmark = pytest.mark.anyio


class Recorder(Actor[object]):
    def __init__(self) -> None:
        self.seen: list[object] = []

    async def receive(self, message: object) -> object:
        self.seen.append(message)
        return len(self.seen)


class Greeter(Actor[str]):
    async def receive(self, message: str) -> object:
        if message == "boom":
            raise ValueError("boom")
        return f"hi {message}"


async def test_messages_are_handled_in_order() -> None:
    recorder = Recorder()
    async with ActorSystem() as system:
        ref = system.spawn(lambda: recorder)
        for i in range(50):
            await ref.tell(i)
        ref.tell_nowait(50)
        assert await ref.ask("last") == 52
    assert recorder.seen == [*range(51), "last"]


async def test_one_handler_at_a_time_with_many_senders() -> None:
    class Slow(Actor[int]):
        active = 0
        peak = 0
        handled = 0

        async def receive(self, message: int) -> object:
            Slow.active += 1
            Slow.peak = max(Slow.peak, Slow.active)
            await anyio.lowlevel.checkpoint()
            await anyio.lowlevel.checkpoint()
            Slow.active -= 1
            Slow.handled += 1
            return None

    async with ActorSystem() as system:
        ref = system.spawn(Slow, mailbox_size=3)
        async with anyio.create_task_group() as senders:
            for sender in range(20):
                for i in range(5):
                    senders.start_soon(ref.tell, sender * 5 + i)
        await ref.ask(-1)
    assert Slow.handled == 101
    assert Slow.peak == 1


async def test_ask_returns_the_reply() -> None:
    async with ActorSystem() as system:
        ref = system.spawn(Greeter, name="greeter")
        assert await ref.ask("bob", timeout=5) == "hi bob"
        assert ref.name == "greeter"
        assert ref.is_alive


async def test_ask_reraises_the_handlers_exception() -> None:
    async with ActorSystem() as system:
        ref = system.spawn(Greeter)
        with pytest.raises(ValueError, match="boom"):
            await ref.ask("boom")


async def test_ask_times_out_without_a_reply() -> None:
    release = anyio.Event()

    class Silent(Actor[str]):
        async def receive(self, message: str) -> object:
            await release.wait()
            return "too late"

    async with ActorSystem() as system:
        ref = system.spawn(Silent)
        with pytest.raises(AskTimeout):
            await ref.ask("anyone?", timeout=0.01)
        assert ref.is_alive
        release.set()


async def test_default_names_and_live_actor_registry() -> None:
    async with ActorSystem() as system:
        first = system.spawn(Greeter)
        second = system.spawn(Greeter)
        assert first.name != second.name
        assert first.name.startswith("Greeter-")
        assert len(system) == 2
        assert set(system.actors) == {first, second}
        first.stop()
        await first.join()
        assert not first.is_alive
        assert system.actors == (second,)
    assert len(system) == 0


async def test_system_message_is_handled_before_queued_user_messages() -> None:
    gate = anyio.Event()
    seen: list[str] = []

    class Gated(Actor[str]):
        async def receive(self, message: str) -> object:
            if message == "first":
                await gate.wait()
            seen.append(message)
            return None

    async with ActorSystem() as system:
        ref = system.spawn(Gated)
        ref.tell_nowait("first")
        await anyio.wait_all_tasks_blocked()
        ref.tell_nowait("a")
        ref.tell_nowait("b")
        ref.tell_system("urgent")
        gate.set()
        await ref.ask("done")
    assert seen == ["first", "urgent", "a", "b", "done"]


async def test_system_message_wakes_an_idle_actor() -> None:
    handled = anyio.Event()

    class Waiter(Actor[str]):
        async def receive(self, message: str) -> object:
            handled.set()
            return None

    async with ActorSystem() as system:
        ref = system.spawn(Waiter)
        await anyio.wait_all_tasks_blocked()
        ref.tell_system("wake up")
        await handled.wait()


async def test_child_tasks_run_alongside_and_report_back() -> None:
    class Parent(Actor[object]):
        def __init__(self) -> None:
            self.results: list[int] = []
            self.done = anyio.Event()

        async def work(self, n: int) -> None:
            await self.ref.tell(n * n)

        async def receive(self, message: object) -> object:
            if message == "go":
                for n in range(3):
                    self.start_soon(self.work, n)
            else:
                assert isinstance(message, int)
                self.results.append(message)
                if len(self.results) == 3:
                    self.done.set()
            return None

    parent = Parent()
    async with ActorSystem() as system:
        ref = system.spawn(lambda: parent)
        await ref.tell("go")
        await parent.done.wait()
    assert sorted(parent.results) == [0, 1, 4]


async def test_actor_properties_outside_a_system() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = Greeter().ref
