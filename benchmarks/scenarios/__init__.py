"""The scenarios, in the order a full run measures them.

Each module has `NAME`, `DESCRIPTION` and `run(session) -> ScenarioResult`, and holds the
job functions its measurement processes run.
"""

from __future__ import annotations

from types import ModuleType

from . import backends, cancel, dbos_peer, direct, floor, latency, memory, prefect, sync, throughput

__all__ = ["SCENARIOS"]

SCENARIOS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (
        throughput,
        floor,
        direct,
        latency,
        sync,
        cancel,
        memory,
        backends,
        prefect,
        dbos_peer,
    )
}
