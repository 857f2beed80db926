"""A test helper: count the runs that reached a point, and wake whoever waits once n have."""

from __future__ import annotations

import anyio


class Arrivals:
    """`arrive()` from each run; `await wait()` returns once `expected` runs have arrived.

    Make it inside the event loop (it holds an anyio Event).
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self._all_in = anyio.Event()

    def arrive(self) -> None:
        self.count += 1
        if self.count >= self.expected:
            self._all_in.set()

    async def wait(self) -> None:
        await self._all_in.wait()
