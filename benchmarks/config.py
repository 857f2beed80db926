"""What the harness's command line decided: the scenarios to run and how."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

__all__ = ["Config"]


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything the command line decided (a `runtime.bench.SessionConfig`, and more)."""

    scenarios: tuple[str, ...]
    runs: int | None = None  # one N for every sized scenario, instead of its defaults
    rounds: int = 3
    stores: tuple[str, ...] = ("memory",)
    backend: str = "asyncio"
    smoke: bool = False
    isolate: bool = True  # each round in a fresh subprocess
    progress: bool = True
    prefect_runs: int = 10
    dbos_runs: int = 1_000
    dbos_threads: int = 64  # DBOS's max_executor_threads
    submitters: int = 64  # tasks sharing the submits in throughput's SQLite comparison row
    timeout: float = 900.0  # seconds one measurement process may take
    stall: float | None = 120.0  # seconds a measurement process may go without progress
    workdir: Path = Path(".")  # scratch space (SQLite files); made and removed by the CLI
    profile_dir: Path | None = None  # cProfile each measurement process into this folder

    def sizes(self, defaults: Sequence[int], smoke: Sequence[int] = (200,)) -> tuple[int, ...]:
        """The N a sized scenario runs: `--runs`, else the smoke sizes, else its defaults."""
        if self.runs is not None:
            return (self.runs,)
        return tuple(smoke if self.smoke else defaults)

    def warmup(self, n: int) -> int:
        """How many runs warm a process up before it is measured (excluded from figures)."""
        return min(n, 20 if self.smoke else 1000)

    def as_json(self) -> dict[str, object]:
        """The parameters part of the results document."""
        return {
            "scenarios": list(self.scenarios),
            "runs": self.runs,
            "rounds": self.rounds,
            "stores": list(self.stores),
            "backend": self.backend,
            "smoke": self.smoke,
            "isolated_processes": self.isolate,
            "prefect_runs": self.prefect_runs,
            "dbos_runs": self.dbos_runs,
            "dbos_threads": self.dbos_threads,
            "submitters": self.submitters,
        }
