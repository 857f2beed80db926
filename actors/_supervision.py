"""Supervision strategies, and the per-actor bookkeeping that applies them."""

from __future__ import annotations

import enum
from collections import deque

import attrs

__all__ = ["Directive", "Escalate", "Restart", "Stop", "Supervision", "Supervisor"]


@attrs.frozen
class Supervision:
    """Base of the strategies that say what happens when an actor fails."""


@attrs.frozen
class Stop(Supervision):
    """Stop the failed actor (the failure is logged). The default."""


@attrs.frozen
class Escalate(Supervision):
    """Cancel the whole system; ``async with ActorSystem()`` raises ``ActorFailed``."""


@attrs.frozen
class Restart(Supervision):
    """Replace the failed instance by a fresh one from the factory, keeping the mailbox.

    When more than ``max_restarts`` failures happen within ``within`` seconds, ``then`` applies
    instead.
    """

    max_restarts: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    within: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    then: Stop | Escalate = attrs.field(factory=Stop)


class Directive(enum.Enum):
    """What to do with an actor that just failed."""

    STOP = "stop"
    RESTART = "restart"
    ESCALATE = "escalate"


@attrs.define
class Supervisor:
    """Applies one actor's strategy, remembering its recent failures for the restart budget."""

    strategy: Supervision
    _failures: deque[float] = attrs.field(init=False, factory=deque)

    def decide(self, now: float) -> Directive:
        """Record a failure at time ``now`` and say how to handle it."""
        strategy = self.strategy
        if isinstance(strategy, Restart):
            failures = self._failures
            failures.append(now)
            while failures and failures[0] <= now - strategy.within:
                failures.popleft()
            if len(failures) <= strategy.max_restarts:
                return Directive.RESTART
            strategy = strategy.then
        if isinstance(strategy, Escalate):
            return Directive.ESCALATE
        return Directive.STOP
