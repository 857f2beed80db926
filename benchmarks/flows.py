"""The flows the scenarios run: trivial async and sync flows, and parked ones.

They live at module level, with stable names, like any user's flows. Parked flows pass a
`Gate` when they start, so a job knows when all its runs are parked at once.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from runtime import flow

__all__ = ["Gate", "gate", "parked", "parked_forever", "trivial", "trivial_sync"]


class Gate:
    """Counts runs that have arrived; `all_in` is set once `expected` of them have."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrived = 0
        self.all_in = anyio.Event()
        if expected <= 0:
            self.all_in.set()

    def arrive(self) -> None:
        self.arrived += 1
        if self.arrived >= self.expected:
            self.all_in.set()

    async def wait(self, alive: Callable[[], int]) -> None:
        """Wait until all have arrived; fail if runs end instead (`alive()`: runs not ended).

        Parked runs cannot end on their own, so one that ended before arriving failed to
        start (a crash, a store that did not confirm Running): waiting on would hang.
        """
        while not self.all_in.is_set():
            with anyio.move_on_after(0.5):
                await self.all_in.wait()
            ended = self.expected - alive()
            if ended > 0 and not self.all_in.is_set():
                raise RuntimeError(
                    f"{ended:,} of {self.expected:,} runs ended before they were parked "
                    f"({self.arrived:,} parked): their final states are in the store"
                )


_gate: Gate | None = None


def gate(expected: int) -> Gate:
    """A new gate for the parked flows of this process (call inside the event loop)."""
    global _gate
    _gate = Gate(expected)
    return _gate


def _arrive() -> None:
    if _gate is not None:
        _gate.arrive()


@flow(name="bench-trivial")
async def trivial(i: int) -> int:
    """Return the input: the cheapest async flow."""
    return i


@flow(name="bench-trivial-sync")
def trivial_sync(i: int) -> int:
    """Return the input: the cheapest sync flow (runs in a worker thread)."""
    return i


@flow(name="bench-parked-forever")
async def parked_forever() -> None:
    """Park until cancelled."""
    _arrive()
    await anyio.sleep_forever()


@flow(name="bench-parked")
async def parked(seconds: float) -> None:
    """Park in `anyio.sleep(seconds)`."""
    _arrive()
    await anyio.sleep(seconds)
