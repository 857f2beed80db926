"""Benchmarking flows: `measure_flow` for your own, and the measuring core of the harness.

`measure_flow(flow, parameters, runs=..., concurrency=..., backend=..., cancel_after=...)`
measures a flow the way the project's harness (`benchmarks/`, in a source checkout) measures
flowactor: every round in a fresh process (`isolate`) that warms up first, figures as the
median and spread over rounds (`model`), machine and version information, the table, the JSON
document (`report`), progress bars (`progress`) and an optional PNG (`plot`, with matplotlib).
`flowactor bench TARGET` is its command line.
"""

from .api import BackendResult, BenchError, FlowBench, load_target, measure_flow
from .isolate import JobFailed, run_job
from .measure import Probe, percentile
from .model import BACKENDS, Figure, Row, ScenarioResult, Summary, Target, Verdict
from .session import Measured, Session, SessionConfig

__all__ = [
    "BACKENDS",
    "BackendResult",
    "BenchError",
    "Figure",
    "FlowBench",
    "JobFailed",
    "Measured",
    "Probe",
    "Row",
    "ScenarioResult",
    "Session",
    "SessionConfig",
    "Summary",
    "Target",
    "Verdict",
    "load_target",
    "measure_flow",
    "percentile",
    "run_job",
]
