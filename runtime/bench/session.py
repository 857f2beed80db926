"""One harness invocation: runs measurement rounds (each in a fresh process), with progress.

Rounds of the same job and parameters are measured once per invocation and shared, so that
(in the project's harness) the floor scenario's flowactor/floor ratio reuses the throughput
scenario's flowactor rounds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from .isolate import JobFailed, run_job
from .model import Round
from .progress import Progress

__all__ = ["Measured", "Session", "SessionConfig"]

Measured = tuple[list[Round], list[str]]
"""The rounds that ran, and the errors of those that did not."""


class SessionConfig(Protocol):
    """What a session needs of a configuration (which may hold more, for its scenarios)."""

    @property
    def rounds(self) -> int: ...  # measured rounds per case
    @property
    def isolate(self) -> bool: ...  # each round in a fresh process
    @property
    def timeout(self) -> float: ...  # seconds one measurement process may take
    @property
    def stall(self) -> float | None: ...  # seconds it may go without progress (None: any)
    @property
    def workdir(self) -> Path: ...  # scratch space, passed to every job as `workdir`
    @property
    def profile_dir(self) -> Path | None: ...  # cProfile each round into this folder


C = TypeVar("C", bound=SessionConfig)


class Session(Generic[C]):
    """Config, progress display and the cache of measured rounds of one invocation.

    `pythonpath`: folders the measurement processes import jobs from first.
    """

    def __init__(self, config: C, progress: Progress, pythonpath: Sequence[str] = ()) -> None:
        self.config = config
        self.progress = progress
        self.pythonpath = tuple(pythonpath)
        self._cache: dict[tuple[str, str], Measured] = {}

    def measure(
        self,
        job: str,
        params: dict[str, Any],
        *,
        label: str,
        rounds: int | None = None,
    ) -> Measured:
        """Run `job` for `rounds` rounds, each in its own process; stop a case at its first error.

        `params["n"]` (runs per round) drives the progress bar. The job's warm-up is its own
        business: every process warms up before it measures.
        """
        key = (job, json.dumps(params, sort_keys=True))
        if key in self._cache:
            return self._cache[key]
        config = self.config
        count = config.rounds if rounds is None else rounds
        n = max(int(params.get("n", 1)), 1)
        bar = self.progress.bar(label, n * count)
        measured: list[Round] = []
        errors: list[str] = []
        for index in range(count):
            note = f"round {index + 1}/{count}"

            def on_progress(p: dict[str, Any], index: int = index, note: str = note) -> None:
                done = int(p.get("done", 0)) if p.get("stage") == "run" else 0
                bar.update(index * n + min(done, n), note=f"{note} {p.get('stage', '')}")

            bar.update(index * n, note=note)
            try:
                result = run_job(
                    job,
                    {**params, "workdir": str(config.workdir)},
                    isolate=config.isolate,
                    timeout=config.timeout,
                    stall=config.stall,
                    profile=self._profile_path(label, index),
                    on_progress=on_progress,
                    pythonpath=self.pythonpath,
                )
            except JobFailed as exc:
                errors.append(str(exc))
                bar.finish("FAILED")
                break
            measured.append(result)
        else:
            bar.finish("done")
        self._cache[key] = (measured, errors)
        return measured, errors

    def _profile_path(self, label: str, index: int) -> Path | None:
        folder = self.config.profile_dir
        if folder is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower()
        return folder / f"{slug}-round{index + 1}.prof"
