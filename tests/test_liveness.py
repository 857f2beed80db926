"""White-box tests of `runtime.stores._liveness`: when a pid says an owner has stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import msgspec
import pytest

from runtime.models import Owner
from runtime.stores._liveness import new_owner, stopped_because, this_process

if not Path("/proc/self/stat").exists():
    pytest.skip("no /proc here: only the lease counts", allow_module_level=True)


def _me(lease: float = 60.0) -> Owner:
    return new_owner(uuid.uuid4(), lease)


def _exited_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped
    return child.pid


def test_this_process_is_alive_and_fully_identified() -> None:
    me = this_process()
    assert me.pid == os.getpid()
    assert me.start_time is not None and me.boot_id and me.pid_ns
    assert stopped_because(_me(), time.time()) is None


def test_an_expired_lease_is_stopped_whatever_the_pid_says() -> None:
    assert stopped_because(_me(-1.0), time.time()) == "its lease expired"


def test_a_missing_record_is_stopped() -> None:
    assert stopped_because(None, time.time()) is not None


def test_a_pid_that_is_gone_is_stopped_at_once() -> None:
    owner = msgspec.structs.replace(_me(), pid=_exited_pid())
    why = stopped_because(owner, time.time())
    assert why is not None and "has exited" in why


def test_a_pid_reused_by_another_process_is_stopped() -> None:
    me = _me()
    assert me.start_time is not None
    owner = msgspec.structs.replace(me, start_time=me.start_time + 1)
    assert stopped_because(owner, time.time()) is not None


def test_a_zombie_is_stopped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        child.send_signal(signal.SIGKILL)
        while Path(f"/proc/{child.pid}/stat").read_bytes().split(b")")[-1].split()[0] != b"Z":
            time.sleep(0.01)  # the kernel's doing, no event to wait on
        probe = new_owner(uuid.uuid4(), 60.0)
        with open(f"/proc/{child.pid}/stat", "rb") as f:
            start = int(f.read().rsplit(b")", 1)[1].split()[19])
        owner = msgspec.structs.replace(probe, pid=child.pid, start_time=start)
        assert stopped_because(owner, time.time()) is not None
    finally:
        child.wait()


@pytest.mark.parametrize(
    "field", ["boot_id", "pid_ns"], ids=["another boot", "another pid namespace"]
)
def test_a_pid_from_elsewhere_is_not_trusted(field: str) -> None:
    owner = msgspec.structs.replace(_me(), pid=_exited_pid(), **{field: "elsewhere"})
    assert stopped_because(owner, time.time()) is None  # its lease decides


def test_an_owner_without_process_facts_counts_by_its_lease() -> None:
    owner = msgspec.structs.replace(_me(), pid=_exited_pid(), start_time=None)
    assert stopped_because(owner, time.time()) is None
