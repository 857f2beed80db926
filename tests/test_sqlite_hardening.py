"""The SQLite store against its files going wrong under it: deleted, replaced, unwritable,
or never openable. Each gives a typed error naming the cause, and no write is acknowledged
into a file that is no longer the store."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import anyio
import pytest

from runtime import (
    Running,
    Runtime,
    SQLiteStore,
    StoreError,
    StoreFileGone,
    StoreReadOnly,
    flow,
)
from tests._arrivals import Arrivals
from tests._children import CHILD
from tests._helpers import unwritable

pytestmark = pytest.mark.anyio


@flow
async def add(x: int) -> int:
    return x + 1


def _url(db: Path) -> str:
    return f"sqlite:///{db}"


def _remove_store(db: Path) -> None:
    """What `rm -rf` of the store's files does."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


# -- a store file deleted or replaced while open -----------------------------------------------
async def test_writes_into_a_deleted_store_are_refused_not_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    parked = Arrivals(1)

    @flow
    async def waits() -> None:
        parked.arrive()
        await anyio.sleep_forever()

    with anyio.fail_after(30):
        async with Runtime(store=_url(db)) as rt:
            in_flight = await rt.submit(waits)
            await parked.wait()
            assert await (await rt.submit(add, 1)).result() == 2
            _remove_store(db)
            with pytest.raises(StoreFileGone, match="deleted or moved") as caught:
                await rt.submit(add, 2)
            assert str(db) in str(caught.value)
            # A run in flight cannot record its end either: it is not reported Cancelled.
            assert not await in_flight.cancel()
            state = await in_flight.wait()
            assert state.is_crashed() and "could not be recorded" in (state.message or "")
            with pytest.raises(StoreFileGone):
                await in_flight.result()
    assert not db.exists()  # nothing wrote a new, empty file behind the open store's back


async def test_writes_into_a_replaced_store_are_refused(tmp_path: Path) -> None:
    db, other = tmp_path / "runs.db", tmp_path / "other.db"
    async with Runtime(store=_url(other)) as rt:
        kept = await rt.submit(add, 10)
        await kept.wait()
    async with Runtime(store=_url(db)) as rt:
        await (await rt.submit(add, 1)).wait()
        os.replace(other, db)  # e.g. a backup restored over the open store
        with pytest.raises(StoreFileGone, match="replaced"):
            await rt.submit(add, 2)
    # The file now at the path is the other store, untouched by the old writer.
    async with Runtime(store=_url(db)) as rt:
        runs = await rt.list_flow_runs()
        assert [r.id for r in runs] == [kept.id]


async def test_a_new_runtime_on_the_path_starts_a_new_store_while_the_old_one_refuses(
    tmp_path: Path,
) -> None:
    """A missing path legitimately gets a new store; the writer still holding the deleted
    file never writes into it, and keeps refusing its own writes."""
    db = tmp_path / "runs.db"
    async with Runtime(store=_url(db)) as old:
        await (await old.submit(add, 1)).wait()
        _remove_store(db)
        async with Runtime(store=_url(db)) as new:
            fresh = await new.submit(add, 2)
            assert await fresh.result() == 3
            with pytest.raises(StoreFileGone, match="replaced"):
                await old.submit(add, 3)
            assert [r.id for r in await new.list_flow_runs()] == [fresh.id]


# -- -shm and -wal files that cannot be written ---------------------------------------------------
@pytest.mark.parametrize("suffix", ["-shm", "-wal"])
async def test_an_unwritable_shm_or_wal_is_a_typed_error_naming_the_file(
    tmp_path: Path, suffix: str, anyio_backend: str
) -> None:
    """An immutable -shm file used to kill the process (SIGBUS: SQLite writes to it through a
    memory mapping, to read as well as to write), an immutable -wal file gave a generic "disk
    I/O error". In a child process, so that a SIGBUS fails this test instead of killing the
    test run."""
    db = tmp_path / "runs.db"
    command = [sys.executable, str(CHILD), "unwritable", str(db), suffix]
    if anyio_backend == "trio":
        command.append("--trio")
    with anyio.fail_after(60):
        done = await anyio.run_process(command, check=False)
    output = done.stdout.decode()
    if "UNSUPPORTED" in output:
        pytest.skip("the file cannot be made unwritable here (needs `chattr +i`)")
    assert done.returncode == 0, f"the child died ({done.returncode}): {done.stderr.decode()}"
    read, write, closed = output.splitlines()
    assert closed == "CLOSED"
    refused = f"StoreReadOnly: The store's {_ROLES[suffix]} file {db}{suffix} cannot be written"
    # Reading never writes to the log, but it does write to the -shm mapping.
    if suffix == "-shm":
        assert read.startswith(f"READ {refused}")
    else:
        assert read == "READ ok"
    assert write.startswith(f"WRITE {refused}")


_ROLES = {"-shm": "shared-memory", "-wal": "write-ahead log"}


# -- stores that cannot be opened: the cause named ----------------------------------------------
async def test_a_store_in_a_missing_directory_names_the_directory(tmp_path: Path) -> None:
    db = tmp_path / "missing-dir" / "runs.db"
    with pytest.raises(StoreError, match="does not exist") as caught:
        async with Runtime(store=_url(db)):
            pass
    assert f"directory {db.parent}" in str(caught.value)
    assert not db.parent.exists()


async def test_a_directory_given_as_the_store_is_named_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory, not a database file") as caught:
        async with Runtime(store=_url(tmp_path)):
            pass
    assert str(tmp_path / "runs.db") in str(caught.value)  # what to give instead
    with pytest.raises(StoreError, match="is a directory"):
        await SQLiteStore(tmp_path).read_flow_run(uuid.uuid4())


async def test_a_new_store_in_a_read_only_directory_names_the_directory(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    db = directory / "runs.db"
    with unwritable(directory), pytest.raises(StoreReadOnly) as caught:
        async with Runtime(store=_url(db)):
            pass
    message = str(caught.value)
    assert "cannot be created" in message and f"directory {directory} is read-only" in message


async def test_an_existing_store_in_a_read_only_directory_names_the_wal_files(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    db = directory / "runs.db"
    async with Runtime(store=_url(db)) as rt:
        await (await rt.submit(add, 1)).wait()
    assert not (directory / "runs.db-wal").exists()  # removed at the last close
    with unwritable(directory), pytest.raises(StoreReadOnly) as caught:
        async with Runtime(store=_url(db)):
            pass
    message = str(caught.value)
    assert f"{db}-wal" in message and f"directory {directory} is read-only" in message


# -- a read-only store ----------------------------------------------------------------------------
async def test_a_read_only_url_gives_a_runtime_that_reads_and_starts_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    async with Runtime(store=_url(db)) as rt:
        done = await rt.submit(add, 1)
        await done.wait()
    before = db.read_bytes()
    with anyio.fail_after(30):
        async with Runtime(store=f"{_url(db)}?mode=ro") as ro:
            run = await ro.read_flow_run(done.id)
            assert run.state is not None and run.state.is_completed()
            assert [s.name for s in await ro.read_states(done.id)] == [
                "Pending",
                "Running",
                "Completed",
            ]
            assert [r.id for r in await ro.list_flow_runs(flow_name="add")] == [done.id]
            with pytest.raises(StoreReadOnly, match="read-only: it reads runs") as caught:
                await ro.submit(add, 2)
            assert "mode=ro" in str(caught.value)
            with pytest.raises(StoreReadOnly, match="opened read-only"):
                await ro.store.set_state(done.id, Running(), force=True)
    # Nothing was written: no run, no owner (SQLite leaves an empty log behind, at most).
    assert db.read_bytes() == before
    wal = tmp_path / "runs.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


async def test_a_read_only_url_of_a_missing_store_says_so(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with pytest.raises(StoreError, match="does not exist"):
        async with Runtime(store=f"{_url(db)}?mode=ro"):
            pass
    assert not db.exists()
