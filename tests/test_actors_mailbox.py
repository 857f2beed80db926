"""The mailbox on its own, and backpressure through an ActorRef."""

from __future__ import annotations

import random

import anyio
import pytest

from actors import Actor, ActorStopped, ActorSystem, Mailbox, MailboxFull

pytestmark = pytest.mark.anyio


async def test_system_items_come_first() -> None:
    mailbox: Mailbox[str] = Mailbox(4)
    mailbox.put_nowait("a")
    mailbox.put_nowait("b")
    mailbox.put_system("s1")
    mailbox.put_system("s2")
    assert mailbox.statistics().queued == 2
    assert mailbox.statistics().queued_system == 2
    assert [await mailbox.get() for _ in range(4)] == ["s1", "s2", "a", "b"]
    assert mailbox.close() == []


async def test_a_sleeping_consumer_is_woken_by_a_system_item() -> None:
    mailbox: Mailbox[str] = Mailbox(1)
    got: list[str] = []

    async def consume() -> None:
        got.append(await mailbox.get())

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        mailbox.put_system("wake")
    assert got == ["wake"]
    mailbox.put_nowait("after")
    assert await mailbox.get() == "after"
    mailbox.close()


async def test_close_drains_everything_and_refuses_more() -> None:
    mailbox: Mailbox[str] = Mailbox(2)
    mailbox.put_nowait("a")
    mailbox.put_nowait("b")
    mailbox.put_system("s")
    assert sorted(mailbox.close()) == ["a", "b", "s"]
    assert mailbox.closed
    assert mailbox.close() == []
    with pytest.raises(ActorStopped):
        mailbox.put_nowait("c")
    with pytest.raises(ActorStopped):
        mailbox.put_system("c")
    with pytest.raises(ActorStopped):
        await mailbox.put("c")


async def test_poll_takes_what_is_there_or_returns_the_default() -> None:
    mailbox: Mailbox[str] = Mailbox(2)
    nothing = object()
    assert mailbox.poll(nothing) is nothing
    with pytest.raises(anyio.WouldBlock):
        mailbox.get_nowait()
    mailbox.put_nowait("a")
    mailbox.put_system("s")  # nobody sleeps: no wake-up sentinel is queued
    assert [mailbox.poll(nothing), mailbox.poll(nothing)] == ["s", "a"]
    assert mailbox.poll(None) is None
    mailbox.close()
    assert mailbox.poll(nothing) is nothing
    with pytest.raises(ActorStopped):
        await mailbox.get()


async def test_poll_takes_the_item_of_a_sender_waiting_for_room() -> None:
    mailbox: Mailbox[str] = Mailbox(0)  # no buffer: every sender waits for the consumer
    nothing = object()
    async with anyio.create_task_group() as tg:
        tg.start_soon(mailbox.put, "waited")
        await anyio.wait_all_tasks_blocked()
        assert mailbox.statistics().waiting_senders == 1
        assert mailbox.poll(nothing) == "waited"
    assert mailbox.poll(nothing) is nothing
    assert mailbox.close() == []


async def test_close_rejects_senders_still_waiting_for_room() -> None:
    mailbox: Mailbox[str] = Mailbox(1)
    mailbox.put_nowait("queued")
    outcome: list[str] = []

    async def blocked_sender() -> None:
        try:
            await mailbox.put("waiting")
        except ActorStopped:
            outcome.append("stopped")

    async with anyio.create_task_group() as tg:
        tg.start_soon(blocked_sender)
        await anyio.wait_all_tasks_blocked()
        assert mailbox.statistics().waiting_senders == 1
        assert mailbox.close() == ["queued"]
    assert outcome == ["stopped"]


async def test_items_of_senders_that_had_to_wait_are_delivered() -> None:
    mailbox: Mailbox[int] = Mailbox(1)
    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(mailbox.put, i)
            await anyio.wait_all_tasks_blocked()
        assert [await mailbox.get() for _ in range(3)] == [0, 1, 2]
    mailbox.close()


async def test_full_mailbox_applies_backpressure_and_lets_system_messages_through() -> None:
    gate = anyio.Event()
    seen: list[str] = []

    class Gated(Actor[str]):
        async def receive(self, message: str) -> object:
            if message == "block":
                await gate.wait()
            seen.append(message)
            return None

    async with ActorSystem() as system:
        ref = system.spawn(Gated, mailbox_size=2)
        ref.tell_nowait("block")
        await anyio.wait_all_tasks_blocked()  # the actor holds "block"; the mailbox is empty
        ref.tell_nowait("u1")
        ref.tell_nowait("u2")
        with pytest.raises(MailboxFull):
            ref.tell_nowait("nope")
        with pytest.raises(MailboxFull):
            await ref.tell("nope", timeout=0.01)

        sent = anyio.Event()

        async def blocked_sender() -> None:
            await ref.tell("u3")
            sent.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked_sender)
            await anyio.wait_all_tasks_blocked()
            assert not sent.is_set()  # tell waits for room
            ref.tell_system("sys")  # the system lane never blocks
            gate.set()
        await sent.wait()
        await ref.ask("end")
    assert seen == ["block", "sys", "u1", "u2", "u3", "end"]


async def test_negative_capacity_is_rejected() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Mailbox[int](-1)


@pytest.mark.parametrize("seed", range(5))
async def test_random_interleavings_keep_lane_order(seed: int) -> None:
    rng = random.Random(seed)
    mailbox: Mailbox[tuple[str, int]] = Mailbox(3)
    received: list[tuple[str, int]] = []
    sent = {"user": 0, "system": 0}
    total = 60

    async def consume() -> None:
        while len(received) < total:
            item = await mailbox.get()
            # Whenever a user item is delivered, no system item may be waiting.
            assert item[0] == "system" or mailbox.statistics().queued_system == 0
            received.append(item)
            if rng.random() < 0.5:
                await anyio.lowlevel.checkpoint()

    async def produce_user() -> None:
        while sent["user"] < total // 2:
            sent["user"] += 1
            await mailbox.put(("user", sent["user"]))

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        tg.start_soon(produce_user)
        while sent["system"] < total // 2:
            sent["system"] += 1
            mailbox.put_system(("system", sent["system"]))
            for _ in range(rng.randrange(3)):
                await anyio.lowlevel.checkpoint()
    mailbox.close()
    for lane in ("user", "system"):
        assert [n for kind, n in received if kind == lane] == list(range(1, total // 2 + 1))
