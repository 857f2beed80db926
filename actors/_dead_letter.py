"""The record of a message that was never handled."""

from __future__ import annotations

import attrs

__all__ = ["DeadLetter"]


@attrs.frozen
class DeadLetter:
    """A message left undelivered, e.g. still queued when its recipient stopped."""

    recipient: str
    message: object
    reason: str
