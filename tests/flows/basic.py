"""Plain flows importable by entrypoint."""

from __future__ import annotations

from runtime import flow


@flow
async def triple(x: int) -> int:
    return 3 * x


not_a_flow = 42
