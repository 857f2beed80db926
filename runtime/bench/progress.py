"""Progress bars on stderr: rich's on a terminal, else one plain line per case (a log file).

rich is imported only when bars are drawn, so measurement processes stay import-light.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import rich.progress

__all__ = ["Bar", "Progress", "progress_display"]


class Bar(Protocol):
    """One task's bar: `update` may be called from any thread."""

    def update(self, completed: int, total: int | None = None, note: str = "") -> None: ...

    def finish(self, note: str = "") -> None: ...


class Progress(Protocol):
    def bar(self, label: str, total: int) -> Bar: ...


class _NoBar:
    def update(self, completed: int, total: int | None = None, note: str = "") -> None:
        return None

    def finish(self, note: str = "") -> None:
        return None


class _Silent:
    def bar(self, label: str, total: int) -> Bar:
        return _NoBar()


class _RichBar:
    def __init__(self, progress: rich.progress.Progress, label: str, total: int) -> None:
        self._progress = progress
        self._label = label
        self._task = progress.add_task(label, total=max(total, 1))

    def update(self, completed: int, total: int | None = None, note: str = "") -> None:
        description = f"{self._label} {note}".rstrip()
        self._progress.update(self._task, completed=completed, total=total, description=description)

    def finish(self, note: str = "") -> None:
        task = self._progress.tasks[self._task]
        description = f"{self._label} {note}".rstrip()
        self._progress.update(self._task, completed=task.total, description=description)


class _RichProgress:
    def __init__(self, progress: rich.progress.Progress) -> None:
        self._progress = progress

    def bar(self, label: str, total: int) -> Bar:
        return _RichBar(self._progress, label, total)


class _PlainBar:
    """For a log file: `label ...` when a case starts, `label [#####...] 100% N/N 1.2s note` when
    it ends."""

    WIDTH = 24

    def __init__(self, label: str, total: int) -> None:
        self._label = label
        self._total = max(total, 1)
        self._lock = threading.Lock()
        self._started = time.monotonic()
        print(f"{label} ...", file=sys.stderr, flush=True)

    def _line(self, completed: int, note: str) -> str:
        share = min(max(completed / self._total, 0.0), 1.0)
        filled = int(share * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        elapsed = time.monotonic() - self._started
        return (
            f"{self._label} [{bar}] {share:4.0%} {completed:,}/{self._total:,} "
            f"{elapsed:5.1f}s {note}"
        ).rstrip()

    def update(self, completed: int, total: int | None = None, note: str = "") -> None:
        with self._lock:
            if total is not None:
                self._total = max(total, 1)

    def finish(self, note: str = "") -> None:
        with self._lock:
            sys.stderr.write(self._line(self._total, note) + "\n")
            sys.stderr.flush()


class _PlainProgress:
    def bar(self, label: str, total: int) -> Bar:
        return _PlainBar(label, total)


@contextlib.contextmanager
def progress_display(enabled: bool = True) -> Iterator[Progress]:
    """A progress display for the duration of the block (rich's bars on a terminal)."""
    if not enabled:
        yield _Silent()
        return
    if not sys.stderr.isatty():  # a log file: one line when each case starts and ends
        yield _PlainProgress()
        return
    from rich.console import Console  # here: measurement processes never draw
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as rich_progress:
        yield _RichProgress(rich_progress)
