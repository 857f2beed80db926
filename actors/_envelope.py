"""What travels through a mailbox besides plain told messages: asks and the stop signal."""

from __future__ import annotations

from typing import Any, Final

import attrs

from ._event import Event, new_event

__all__ = ["STOP", "Ask", "Reply"]


class _StopSignal:
    """Posted on the system lane to make an actor stop after its current message."""

    def __repr__(self) -> str:
        return "STOP"


STOP: Final = _StopSignal()


@attrs.define(eq=False)
class Reply:
    """A one-shot slot for the answer to an ``ask``: a value or an exception."""

    _event: Event = attrs.field(init=False, factory=new_event)
    _value: object = attrs.field(init=False, default=None)
    _error: BaseException | None = attrs.field(init=False, default=None)

    def succeed(self, value: object) -> None:
        """Answer with ``value`` (ignored if already answered)."""
        if not self._event.is_set():
            self._value = value
            self._event.set()

    def fail(self, error: BaseException) -> None:
        """Answer with ``error``, raised in the asker (ignored if already answered)."""
        if not self._event.is_set():
            self._error = error
            self._event.set()

    async def wait(self) -> Any:
        """Wait for the answer; return the value or raise the error."""
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value


@attrs.frozen
class Ask:
    """A message whose handler's return value (or exception) answers ``reply``."""

    message: object
    reply: Reply
