"""The harness's data: per-round figures, their summaries, targets and results."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from typing import Any, Literal

__all__ = [
    "BACKENDS",
    "STORES",
    "Figure",
    "Row",
    "ScenarioResult",
    "Summary",
    "Target",
    "Verdict",
]

BACKENDS = ("asyncio", "uvloop", "trio")
STORES = ("memory", "sqlite")

Round = dict[str, Any]
"""What one measurement process reports: metric name -> value, plus `ok` and `expected`."""


@dataclasses.dataclass(frozen=True)
class Summary:
    """Median and spread of one metric over the measured rounds."""

    median: float
    min: float
    max: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        clean = tuple(float(v) for v in values if v is not None and not math.isnan(float(v)))
        if not clean:
            nan = math.nan
            return cls(nan, nan, nan, ())
        return cls(statistics.median(clean), min(clean), max(clean), clean)

    def as_json(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.min, "max": self.max, "values": self.values}


@dataclasses.dataclass(frozen=True)
class Figure:
    """How a metric is shown in the table: its key in a round, label, unit and format.

    A `total` figure (a count of runs, say) is shown as its sum over the rounds rather than
    its median, so that what happened in one round only stays visible.
    """

    key: str
    label: str
    unit: str = ""
    fmt: str = ",.0f"
    total: bool = False


@dataclasses.dataclass(frozen=True)
class Target:
    """A goal for one metric's median: `value OP threshold`, set for a given N (or any N)."""

    key: str
    op: Literal[">=", "<=", "<"]
    threshold: float
    text: str
    at_n: int | None = None

    def holds(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.op == ">=":
            return value >= self.threshold
        if self.op == "<=":
            return value <= self.threshold
        return value < self.threshold


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A target checked against a row: PASS or FAIL, with what was compared."""

    target: Target
    passed: bool
    value: float
    note: str = ""

    @property
    def word(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target.text,
            "metric": self.target.key,
            "op": self.target.op,
            "threshold": self.target.threshold,
            "at_n": self.target.at_n,
            "value": self.value,
            "result": self.word,
            "note": self.note,
        }


@dataclasses.dataclass
class Row:
    """One case of a scenario (a size, store and backend): its rounds and their summaries."""

    scenario: str
    case: str
    params: dict[str, Any]
    rounds: list[Round]
    figures: tuple[Figure, ...]
    errors: list[str] = dataclasses.field(default_factory=list)
    verdicts: list[Verdict] = dataclasses.field(default_factory=list)

    @property
    def n(self) -> int | None:
        n = self.params.get("n")
        return int(n) if n is not None else None

    @property
    def completed(self) -> bool:
        """Every round ran and reported that all its runs ended as they should."""
        return not self.errors and bool(self.rounds) and all(r.get("ok") for r in self.rounds)

    def summary(self, key: str) -> Summary:
        return Summary.of([r[key] for r in self.rounds if isinstance(r.get(key), int | float)])

    def total(self, key: str) -> float:
        """The sum of `key` over the rounds that reported it (0 when none did)."""
        values: list[float] = [r[key] for r in self.rounds if isinstance(r.get(key), int | float)]
        return sum(values)  # an int when the values are (counts stay whole in the JSON)

    def check(self, target: Target, note: str = "") -> Verdict:
        """Check `target` on this row's median; an incomplete row always fails."""
        value = self.summary(target.key).median
        passed = target.holds(value) and self.completed
        if not self.completed:
            note = "; ".join(x for x in (note, "not every run completed") if x)
        if target.at_n is not None and self.n != target.at_n:
            note = "; ".join(x for x in (note, f"target set for N={target.at_n:,}") if x)
        verdict = Verdict(target, passed, value, note)
        self.verdicts.append(verdict)
        return verdict

    def as_json(self) -> dict[str, Any]:
        keys = sorted(
            {k for r in self.rounds for k, v in r.items() if isinstance(v, int | float)}
            - {"ok", "expected"}
        )
        return {
            "scenario": self.scenario,
            "case": self.case,
            "params": self.params,
            "completed": self.completed,
            "figures": [dataclasses.asdict(f) for f in self.figures],
            "summary": {k: self.summary(k).as_json() for k in keys},
            "totals": {f.key: self.total(f.key) for f in self.figures if f.total},
            "rounds": self.rounds,
            "targets": [v.as_json() for v in self.verdicts],
            "errors": self.errors,
        }


@dataclasses.dataclass
class ScenarioResult:
    """What a scenario reports: its rows, or why it was skipped."""

    name: str
    description: str
    rows: list[Row] = dataclasses.field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    chart: str | None = None  # the metric `--plot` charts (default: each row's first figure)
    charts: tuple[str, ...] = ()  # several metrics, one panel each (instead of `chart`)

    @property
    def verdicts(self) -> list[Verdict]:
        return [v for row in self.rows for v in row.verdicts]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "skipped": self.skipped,
            "notes": self.notes,
            "chart": self.chart,
            "charts": list(self.charts),
            "rows": [row.as_json() for row in self.rows],
        }
