"""Whether an owner has stopped: its lease, and on the same host its process.

An owner records its pid with what makes the pid meaningful: the process's start time, the boot
id and the pid namespace. Seen from the same boot and the same pid namespace, a pid that no
longer exists (or that now belongs to a process started at another time) means the owner's
process is gone, so the owner has stopped whatever its lease says. Where the boot or the
namespace differ (another container sharing the volume, another host) or are unknown (not
Linux), only the lease counts.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import attrs

from ..models import Owner

__all__ = ["Identity", "new_owner", "stopped_because", "this_process"]

_PROC = "/proc"


@attrs.frozen
class Identity:
    """What names a process unambiguously on this machine (None where it cannot be known)."""

    pid: int
    start_time: int | None
    boot_id: str | None
    pid_ns: str | None


_cached: Identity | None = None


def this_process() -> Identity:
    """This process's identity (worked out once per process: a fork gets its own)."""
    global _cached
    pid = os.getpid()
    if _cached is None or _cached.pid != pid:
        _cached = Identity(pid, _start_time(pid), _boot_id(), _pid_namespace())
    return _cached


def new_owner(owner_id: uuid.UUID, lease_seconds: float) -> Owner:
    """The record of an owner living in this process, its lease ending `lease_seconds` from now."""
    me = this_process()
    return Owner(
        id=owner_id,
        pid=me.pid,
        hostname=socket.gethostname(),
        lease_expires=time.time() + lease_seconds,
        start_time=me.start_time,
        boot_id=me.boot_id,
        pid_ns=me.pid_ns,
    )


def stopped_because(owner: Owner | None, at: float) -> str | None:
    """Why `owner` has stopped as of `at` (time.time()), or None while it lives.

    None as the owner (its record is gone) means it stopped: live owners keep their record.
    """
    if owner is None:
        return "it is no longer registered"
    if owner.lease_expires < at:
        return "its lease expired"
    if _process_gone(owner):
        return f"its process (pid {owner.pid}) has exited"
    return None


def _process_gone(owner: Owner) -> bool:
    """True only where the pid can be trusted and no longer names the owner's process."""
    if owner.start_time is None or owner.boot_id is None or owner.pid_ns is None:
        return False
    me = this_process()
    if owner.boot_id != me.boot_id or owner.pid_ns != me.pid_ns:
        return False  # another host or container: its pids are not ours to look up
    try:
        start = _read_start_time(owner.pid)
    except (FileNotFoundError, ProcessLookupError):
        return True  # no such process (any more)
    except (OSError, ValueError, IndexError):
        return False  # cannot tell (permissions, an unexpected format): trust the lease
    return start is None or start != owner.start_time


def _start_time(pid: int) -> int | None:
    try:
        return _read_start_time(pid)
    except (OSError, ValueError, IndexError):
        return None


def _read_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks since boot); None for a zombie.

    The command name (field 2) is in parentheses and may hold spaces or parentheses itself:
    the fields that follow are counted from the last ')'.
    """
    with open(f"{_PROC}/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None  # exited, waiting to be reaped: it drives nothing any more
    return int(fields[19])


def _boot_id() -> str | None:
    try:
        with open(f"{_PROC}/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _pid_namespace() -> str | None:
    try:
        return os.readlink(f"{_PROC}/self/ns/pid")
    except OSError:
        return None
