"""A generic actor layer on anyio: actors with mailboxes, supervision and an actor system."""

from ._actor import Actor
from ._dead_letter import DeadLetter
from ._errors import ActorFailed, ActorStopped, AskTimeout, MailboxFull
from ._event import Event, new_event
from ._ref import ActorRef
from ._supervision import Escalate, Restart, Stop, Supervision
from ._system import ActorSystem
from .mailbox import Mailbox, MailboxStatistics

__all__ = [
    "Actor",
    "ActorFailed",
    "ActorRef",
    "ActorStopped",
    "ActorSystem",
    "AskTimeout",
    "DeadLetter",
    "Escalate",
    "Event",
    "Mailbox",
    "MailboxFull",
    "MailboxStatistics",
    "Restart",
    "Stop",
    "Supervision",
    "new_event",
]
