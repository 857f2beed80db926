"""Exceptions raised by the actor layer."""

from __future__ import annotations

__all__ = ["ActorFailed", "ActorStopped", "AskTimeout", "MailboxFull"]


class ActorStopped(Exception):
    """The actor is stopped (or stopping): it will not handle this message."""


class AskTimeout(TimeoutError):
    """No reply to an ``ask`` arrived within its timeout."""


class MailboxFull(TimeoutError):
    """The mailbox had no room: at once (``tell_nowait``) or within ``tell``'s timeout."""


class ActorFailed(Exception):
    """An actor failure escalated to the system; ``__cause__`` is the original error."""

    def __init__(self, message: str, *, actor_name: str) -> None:
        super().__init__(message)
        self.actor_name = actor_name
