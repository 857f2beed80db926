"""Measurement helpers used inside a measurement process: timing, percentiles, RSS, CPU share.

RSS is measured as msgspec's benchmarks do it: one measurement per process, the peak taken
from the kernel's high-water mark combined with a sampling thread that reads the current RSS
every 50 ms (which also gives a mid-run figure at any moment). The kernel's mark is VmHWM
where /proc has it, because `ru_maxrss` carries the parent's mark across exec (it is reported
too, as `ru_maxrss_mb`).
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = [
    "CpuShare",
    "Probe",
    "RssSampler",
    "current_rss",
    "peak_rss",
    "percentile",
    "reset_peak_rss",
    "ru_maxrss",
    "timer",
]

MB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def timer() -> float:
    """The clock every figure is measured with (monotonic, high resolution)."""
    return time.perf_counter()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, linearly interpolated; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def current_rss() -> int:
    """This process's resident set size now, in bytes (the peak where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return peak_rss()


def ru_maxrss() -> int:
    """`getrusage(RUSAGE_SELF).ru_maxrss` in bytes.

    On Linux it survives `execve`: a fresh process starts with its parent's high-water mark,
    so a small measurement process can inherit a bigger harness's figure. `peak_rss` avoids it.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def peak_rss() -> int:
    """This process's own peak RSS so far, in bytes: VmHWM (reset by exec), else `ru_maxrss`."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return ru_maxrss()


def reset_peak_rss() -> bool:
    """Reset this process's kernel high-water mark (VmHWM) to its current RSS, where Linux can.

    So that a peak measured after a warm-up is the measured part's own. False where the
    mark cannot be reset (then `peak_rss` may still hold an earlier, higher peak).
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class RssSampler:
    """A daemon thread that samples RSS every `interval` s and calls `tick` now and then."""

    def __init__(
        self,
        interval: float = 0.05,
        tick: Callable[[], None] | None = None,
        tick_every: float = 0.25,
    ) -> None:
        self.interval = interval
        self.max_sampled = current_rss()
        self._tick = tick
        self._tick_every = tick_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        last_tick = time.monotonic()
        while not self._stop.wait(self.interval):
            self.max_sampled = max(self.max_sampled, current_rss())
            if self._tick is not None and time.monotonic() - last_tick >= self._tick_every:
                last_tick = time.monotonic()
                self._tick()

    @property
    def peak(self) -> int:
        """The high-water mark: the larger of the samples and the kernel's, in bytes."""
        return max(self.max_sampled, current_rss(), peak_rss())

    def figures(self) -> dict[str, float]:
        """`peak_rss_mb` (own high-water mark and samples) and the raw `ru_maxrss_mb`."""
        return {"peak_rss_mb": self.peak / MB, "ru_maxrss_mb": ru_maxrss() / MB}

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


class CpuShare:
    """The share of the machine's CPU time used by *other* processes while measuring.

    Like the peer benchmarks' `cpu_foreign_share`: a figure taken on a busy machine says so.
    """

    def __init__(self) -> None:
        self.foreign_share = math.nan
        self.own_cpu_s = math.nan

    @contextlib.contextmanager
    def measuring(self) -> Iterator[CpuShare]:
        start = _cpu_jiffies()
        own0 = time.process_time()
        try:
            yield self
        finally:
            end = _cpu_jiffies()
            self.own_cpu_s = time.process_time() - own0
            if start is not None and end is not None and end[1] > start[1]:
                hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
                busy = (end[0] - start[0]) / hz
                total = (end[1] - start[1]) / hz
                self.foreign_share = max(0.0, busy - self.own_cpu_s) / total


class Probe:
    """What a job reports while it runs: how far it is (`done` of `total`), and RSS.

    The job bumps `done` from the event loop; the sampler thread reads it and calls `emit`
    (the measurement process writes it to its parent as a progress line). Reading an int that
    another thread writes is safe under the GIL, and costs the loop nothing.
    """

    def __init__(self, emit: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.done = 0
        self.total = 0
        self.stage = ""
        self._emit = emit
        self._sampler: RssSampler | None = None

    def start(self, total: int, stage: str) -> None:
        """Announce a new stage of `total` steps (`done` goes back to 0)."""
        self.done, self.total, self.stage = 0, total, stage
        self.report()

    def report(self) -> None:
        if self._emit is not None:
            self._emit({"stage": self.stage, "done": self.done, "total": self.total})

    @contextlib.contextmanager
    def sampling(self) -> Iterator[RssSampler]:
        """Sample RSS (and report progress) for the duration of the block."""
        with RssSampler(tick=self.report if self._emit else None) as sampler:
            self._sampler = sampler
            try:
                yield sampler
            finally:
                self._sampler = None
                self.report()

    @property
    def peak_rss(self) -> int:
        return self._sampler.peak if self._sampler is not None else peak_rss()
