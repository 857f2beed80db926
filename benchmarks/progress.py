"""Progress bars on stderr: rich's when it is installed, else a plain one-line fallback."""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

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
    def __init__(self, progress: Any, label: str, total: int) -> None:
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
    def __init__(self, progress: Any) -> None:
        self._progress = progress

    def bar(self, label: str, total: int) -> Bar:
        return _RichBar(self._progress, label, total)


class _PlainBar:
    """`label [#####.....] 45% 45,000/100,000 note` on one line of stderr."""

    WIDTH = 24

    def __init__(self, label: str, total: int, tty: bool) -> None:
        self._label = label
        self._total = max(total, 1)
        self._tty = tty
        self._lock = threading.Lock()
        self._last = 0.0
        self._started = time.monotonic()
        if not tty:
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
            now = time.monotonic()
            if not self._tty or now - self._last < 0.1:
                return
            self._last = now
            sys.stderr.write("\r\x1b[2K" + self._line(completed, note))
            sys.stderr.flush()

    def finish(self, note: str = "") -> None:
        with self._lock:
            line = self._line(self._total, note)
            if self._tty:
                sys.stderr.write("\r\x1b[2K" + line + "\n")
            else:
                sys.stderr.write(line + "\n")
            sys.stderr.flush()


class _PlainProgress:
    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()

    def bar(self, label: str, total: int) -> Bar:
        return _PlainBar(label, total, self._tty)


@contextlib.contextmanager
def progress_display(enabled: bool = True) -> Iterator[Progress]:
    """A progress display for the duration of the block (rich if importable, on a terminal)."""
    if not enabled:
        yield _Silent()
        return
    if not sys.stderr.isatty():  # a log file: one line when each case starts and ends
        yield _PlainProgress()
        return
    try:  # rich is an optional extra: imported by name, so nothing needs its stubs
        console = importlib.import_module("rich.console")
        rich = importlib.import_module("rich.progress")
    except ImportError:
        yield _PlainProgress()
        return
    columns = (
        rich.TextColumn("{task.description}"),
        rich.BarColumn(),
        rich.TaskProgressColumn(),
        rich.MofNCompleteColumn(),
        rich.TimeElapsedColumn(),
    )
    stderr = console.Console(stderr=True)
    with rich.Progress(*columns, console=stderr, transient=False) as rich_progress:
        yield _RichProgress(rich_progress)
