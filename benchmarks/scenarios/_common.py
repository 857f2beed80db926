"""Helpers shared by the scenarios: building rows, pairing rounds, checking targets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from runtime.bench.model import Figure, Round, Row, Target
from runtime.bench.session import Measured

__all__ = ["add_ratio", "check", "make_row"]


def make_row(
    scenario: str,
    case: str,
    params: dict[str, Any],
    measured: Measured,
    figures: Sequence[Figure],
) -> Row:
    """A table row from measured rounds (copied, so derived figures can be added)."""
    rounds, errors = measured
    return Row(scenario, case, params, [dict(r) for r in rounds], tuple(figures), list(errors))


def add_ratio(
    row: Row,
    key: str,
    numerators: Sequence[Round],
    denominators: Sequence[Round],
    num_key: str,
    den_key: str | None = None,
) -> None:
    """Store `num/den` per round pair (round i with round i) in `row` under `key`."""
    den_key = num_key if den_key is None else den_key
    for i, round_ in enumerate(row.rounds):
        if i < len(numerators) and i < len(denominators):
            num = numerators[i].get(num_key, math.nan)
            den = denominators[i].get(den_key, math.nan)
            round_[key] = num / den if den else math.nan


def check(rows: Sequence[Row], target: Target) -> None:
    """Check `target` on the rows of its N (or on every row when none has that N)."""
    chosen = [r for r in rows if target.at_n is None or r.n == target.at_n] or list(rows)
    for row in chosen:
        row.check(target)
