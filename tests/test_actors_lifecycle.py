"""Starting and stopping: system exit, stop(), dead letters, cancellation."""

from __future__ import annotations

import functools
import gc
import weakref

import anyio
import pytest

from actors import Actor, ActorRef, ActorStopped, ActorSystem, DeadLetter
from actors._cell import ActorCell

pytestmark = pytest.mark.anyio


class Tracked(Actor[object]):
    """Starts a child task that waits forever; records what happened to it."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def on_start(self) -> None:
        self.log.append("start")
        self.start_soon(self.child)

    async def child(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            self.log.append("child cancelled")

    async def receive(self, message: object) -> object:
        return message

    async def on_stop(self) -> None:
        self.log.append("stop")


async def test_leaving_the_system_stops_every_actor() -> None:
    logs: list[list[str]] = [[] for _ in range(3)]
    async with ActorSystem() as system:
        refs = [system.spawn(functools.partial(Tracked, log)) for log in logs]
        for ref in refs:
            await ref.ask("ping")
    assert logs == [["start", "child cancelled", "stop"]] * 3
    assert not any(ref.is_alive for ref in refs)
    assert len(system) == 0


async def test_spawning_on_a_closed_system_fails() -> None:
    system = ActorSystem(name="sys")
    with pytest.raises(RuntimeError, match="sys"):
        system.spawn(lambda: Tracked([]))
    async with system:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        system.spawn(lambda: Tracked([]))
    with pytest.raises(RuntimeError):
        async with system:
            pass


async def test_stop_is_idempotent_and_telling_a_stopped_actor_fails_fast() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Tracked(log))
        ref.stop()
        ref.stop()
        with pytest.raises(ActorStopped):
            await ref.tell("late")
        await ref.join()
        await ref.join()
        ref.stop()
        with pytest.raises(ActorStopped):
            await ref.tell("late")
        with pytest.raises(ActorStopped):
            ref.tell_nowait("late")
        with pytest.raises(ActorStopped):
            ref.tell_system("late")
        with pytest.raises(ActorStopped):
            await ref.ask("late")
    assert log == ["start", "child cancelled", "stop"]


async def test_an_actor_can_stop_itself() -> None:
    handled: list[str] = []

    class Once(Actor[str]):
        async def receive(self, message: str) -> object:
            handled.append(message)
            self.ref.stop()
            return None

    letters: list[DeadLetter] = []
    async with ActorSystem(on_dead_letter=letters.append) as system:
        ref = system.spawn(Once, mailbox_size=5)
        for message in "abc":
            ref.tell_nowait(message)
        await ref.join()
    assert handled == ["a"]
    assert [letter.message for letter in letters] == ["b", "c"]


async def test_queued_messages_become_dead_letters_at_stop() -> None:
    gate = anyio.Event()

    class Gated(Actor[str]):
        async def receive(self, message: str) -> object:
            await gate.wait()
            return message

    letters: list[DeadLetter] = []
    async with ActorSystem(on_dead_letter=letters.append) as system:
        ref = system.spawn(Gated, name="gated")
        ref.tell_nowait("current")
        await anyio.wait_all_tasks_blocked()
        ref.tell_nowait("queued")
        ref.tell_system("system")
        outcomes: list[object] = []

        async def asker() -> None:
            try:
                outcomes.append(await ref.ask("question"))
            except ActorStopped as exc:
                outcomes.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(asker)
            await anyio.wait_all_tasks_blocked()
            ref.stop()
            with pytest.raises(ActorStopped):
                ref.tell_nowait("after stop")
            gate.set()
        await ref.join()
    # "system" was queued before the stop: it was handled. The rest was not.
    assert sorted(str(letter.message) for letter in letters) == ["question", "queued"]
    assert all(letter.recipient == "gated" for letter in letters)
    assert all(letter.reason for letter in letters)
    assert system.dead_letter_count == 2
    assert len(outcomes) == 1
    assert isinstance(outcomes[0], ActorStopped)


async def test_a_sender_blocked_on_a_full_mailbox_gets_actor_stopped() -> None:
    gate = anyio.Event()

    class Gated(Actor[str]):
        async def receive(self, message: str) -> object:
            await gate.wait()
            return None

    letters: list[DeadLetter] = []
    async with ActorSystem(on_dead_letter=letters.append) as system:
        ref = system.spawn(Gated, mailbox_size=1)
        ref.tell_nowait("current")
        await anyio.wait_all_tasks_blocked()
        ref.tell_nowait("queued")
        outcome: list[BaseException] = []

        async def blocked_sender() -> None:
            try:
                await ref.tell("blocked")
            except ActorStopped as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked_sender)
            await anyio.wait_all_tasks_blocked()
            ref.stop()
            gate.set()
    assert len(outcome) == 1
    assert [letter.message for letter in letters] == ["queued"]


async def test_cancelling_the_host_scope_still_runs_on_stop() -> None:
    log: list[str] = []
    with anyio.CancelScope() as scope:
        async with ActorSystem() as system:
            ref = system.spawn(lambda: Tracked(log))
            await ref.ask("ping")
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert log == ["start", "child cancelled", "stop"]
    assert not ref.is_alive


async def test_an_error_in_the_block_propagates_unwrapped_and_runs_on_stop() -> None:
    log: list[str] = []
    with pytest.raises(LookupError, match="body"):
        async with ActorSystem() as system:
            ref = system.spawn(lambda: Tracked(log))
            await ref.ask("ping")
            raise LookupError("body")
    assert log == ["start", "child cancelled", "stop"]


async def test_a_cancelled_handler_fails_its_ask_with_actor_stopped() -> None:
    class Stuck(Actor[str]):
        async def receive(self, message: str) -> object:
            await anyio.sleep_forever()
            return None

    outcome: list[BaseException] = []

    async def asker(ref: ActorRef[str]) -> None:
        try:
            await ref.ask("hang")
        except ActorStopped as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:  # the asker lives outside the system
        with anyio.CancelScope() as scope:
            async with ActorSystem() as system:
                tg.start_soon(asker, system.spawn(Stuck))
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
                await anyio.sleep_forever()
    assert len(outcome) == 1


async def test_on_stop_is_bounded_by_stop_timeout() -> None:
    finished = False

    class SlowStop(Actor[str]):
        async def receive(self, message: str) -> object:
            return None

        async def on_stop(self) -> None:
            await anyio.sleep_forever()

    async with ActorSystem(stop_timeout=0.01) as system:
        system.spawn(SlowStop)
    finished = True
    assert finished


async def test_spawning_from_many_actors_is_cheap_and_all_stop() -> None:
    stopped = 0

    class Leaf(Actor[int]):
        async def receive(self, message: int) -> object:
            return message

        async def on_stop(self) -> None:
            nonlocal stopped
            stopped += 1

    async with ActorSystem() as system:
        refs = [system.spawn(Leaf) for _ in range(500)]
        refs[0].tell_nowait(1)
        assert len(system) == 500
    assert stopped == 500


class _Echo(Actor[object]):
    async def receive(self, message: object) -> object:
        return message


async def test_refs_to_one_actor_are_equal_and_hashable() -> None:
    async with ActorSystem() as system:
        first = system.spawn(_Echo)
        other = system.spawn(_Echo)
        assert first == system.actors[0] and first != other
        assert len({first, system.actors[0], other}) == 2
        assert first != "not a ref"


async def test_a_stopped_actor_is_freed_without_the_cycle_collector() -> None:
    """Nothing of a finished actor waits for a full garbage collection (thousands of runs)."""
    made: list[weakref.ref[_Echo]] = []

    def make() -> _Echo:
        actor = _Echo()
        made.append(weakref.ref(actor))
        return actor

    async with ActorSystem() as system:
        gc.collect()
        gc.disable()  # from here on, only reference counting frees anything
        try:
            ref = system.spawn(make, name="short-lived")
            assert await ref.ask("hi") == "hi"
            ref.stop()
            await ref.join()
            del ref
            assert made[0]() is None
            cells = [o for o in gc.get_objects() if isinstance(o, ActorCell)]
            assert [c.name for c in cells if c.name == "short-lived"] == []
        finally:
            gc.enable()
