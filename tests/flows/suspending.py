"""A flow that suspends itself and continues, as a new attempt, once resumed."""

from __future__ import annotations

from runtime import flow, suspend_flow_run

attempts: list[int] = []


@flow
async def approval(amount: int) -> str:
    attempts.append(amount)
    approved = await suspend_flow_run(wait_for_input=bool, key="approve")
    return f"{amount} approved={approved}"
