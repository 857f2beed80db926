"""`measure_flow`: your own flow, measured the way the project's harness measures flowactor.

Every round runs in a fresh process that imports the flow by its entrypoint, warms up, then
runs it N times, `concurrency` at a time (`runtime.bench.flow_job`); figures are the median
and spread over the rounds, run counts their totals. `flowactor bench TARGET` is this function
with a table on top. Bad input raises `BenchError` (one line) before anything is measured.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import inspect
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio

from ..errors import ParameterTypeError
from ..flows import Flow
from ..loading import load_flow_from_entrypoint
from ..stores import open_store
from . import loops, report
from .flow_job import FINAL_ORDER, STATE_KEYS
from .flow_table import CHARTS, figures, print_flow_table
from .model import BACKENDS, Row, ScenarioResult, Summary
from .plot import write_plot
from .progress import progress_display
from .session import Session
from .stores import fresh_url, remove_sqlite

__all__ = ["BackendResult", "BenchError", "FlowBench", "load_target", "measure_flow"]

JOB = "runtime.bench.flow_job:flow_job"
METHOD = (
    "each round in a fresh process: a warm-up batch in its own Runtime and store (excluded), "
    "then N runs, `concurrency` worker tasks each submitting a run and awaiting its final state; "
    "figures are the median and min-max over rounds, run counts the totals over rounds; "
    "latency from submit to final state; memory per concurrent run = (peak RSS - RSS before "
    "the batch) / most runs in flight at once"
)


class BenchError(ValueError):
    """Bad input to a benchmark (a target, parameter, store or backend); its message is one line."""


@dataclasses.dataclass(frozen=True)
class _Rounds:
    """The measurement settings a `Session` needs (see `runtime.bench.session.SessionConfig`)."""

    rounds: int
    isolate: bool
    timeout: float
    workdir: Path
    stall: float | None = None  # a user's run may take long without a sign of progress
    profile_dir: Path | None = None


@dataclasses.dataclass(frozen=True)
class BackendResult:
    """One backend's rounds: figures (`median`, `summary`) and final states (`states`)."""

    backend: str
    row: Row

    def summary(self, key: str) -> Summary:
        """Median, min, max and per-round values of figure `key` (e.g. "runs_per_s")."""
        return self.row.summary(key)

    def median(self, key: str) -> float:
        """The median of figure `key` over the rounds (NaN if no round measured it)."""
        return self.row.summary(key).median

    @property
    def states(self) -> dict[str, int]:
        """How many measured runs ended in each final state, over all rounds."""
        return {STATE_KEYS[t]: int(self.row.total(STATE_KEYS[t])) for t in FINAL_ORDER}

    @property
    def ok(self) -> bool:
        """Every round ran, and every run ended Completed (or Cancelled, with `cancel_after`)."""
        return self.row.completed

    @property
    def errors(self) -> list[str]:
        """Why rounds could not be measured (a crashed or timed-out measurement process)."""
        return list(self.row.errors)

    @property
    def runs_per_s(self) -> float:
        return self.median("runs_per_s")

    @property
    def latency_p50_ms(self) -> float:
        return self.median("latency_p50_ms")

    @property
    def latency_p99_ms(self) -> float:
        return self.median("latency_p99_ms")

    @property
    def peak_rss_mb(self) -> float:
        return self.median("peak_rss_mb")

    @property
    def kib_per_run(self) -> float:
        return self.median("kib_per_run")

    @property
    def cancel_total_ms(self) -> float:
        return self.median("cancel_total_ms")

    @property
    def cancel_p99_ms(self) -> float:
        return self.median("cancel_p99_ms")


@dataclasses.dataclass(frozen=True)
class FlowBench:
    """What `measure_flow` measured: one `BackendResult` per backend, and how it was run."""

    target: str
    flow_name: str
    settings: dict[str, Any]
    results: tuple[BackendResult, ...]
    started: dt.datetime
    elapsed_s: float
    versions: dict[str, str | None]

    def __getitem__(self, backend: str) -> BackendResult:
        for result in self.results:
            if result.backend == backend:
                return result
        raise KeyError(f"{backend!r} was not measured (measured: {', '.join(self.backends)})")

    @property
    def backends(self) -> list[str]:
        return [r.backend for r in self.results]

    @property
    def ok(self) -> bool:
        """Every backend's rounds ran and every run ended as expected."""
        return all(r.ok for r in self.results)

    def scenario(self) -> ScenarioResult:
        """The results as the harness reports them: one row per backend."""
        description = f"{self.target}: {self.settings['runs']:,} runs per round"
        rows = [r.row for r in self.results]
        return ScenarioResult(self.flow_name, description, rows=rows, charts=CHARTS)

    def document(self, argv: Sequence[str] = ()) -> dict[str, Any]:
        """The JSON document (the harness's schema): machine, versions, settings, figures."""
        return report.build_document(
            {**self.settings, "method": METHOD},
            [self.scenario()],
            argv=argv,
            started=self.started,
            elapsed_s=self.elapsed_s,
            source={"versions": self.versions},
        )

    def write_json(self, path: str | os.PathLike[str], argv: Sequence[str] = ()) -> None:
        report.write_json(self.document(argv), Path(path))

    def write_plot(self, path: str | os.PathLike[str]) -> None:
        """A PNG with one panel per charted figure; needs matplotlib (`flowactor[bench]`)."""
        write_plot(self.document(), Path(path))

    def print_table(self, out: TextIO | None = None) -> None:
        s = self.settings
        title = (
            f"flow {self.flow_name!r} ({self.target}): {s['runs']:,} runs per round, "
            f"{s['concurrency']:,} at a time, store {s['store']}"
        )
        if s["cancel_after"] is not None:
            title += f", all cancelled after {s['cancel_after']:g} s"
        caption = (
            f"median (min-max) of {s['rounds']} round(s), each in a fresh process after "
            f"{s['warmup']:,} warm-up runs; run counts are totals over the rounds"
        )
        print_flow_table(title, caption, [r.row for r in self.results], out)
        for name, problem in s["backends_skipped"].items():
            print(f"{name}: not measured ({problem})", file=out)


def measure_flow(
    flow: Flow[..., Any] | str,
    parameters: Mapping[str, Any] | None = None,
    *,
    runs: int = 1000,
    concurrency: int | None = None,
    rounds: int = 3,
    warmup: int | None = None,
    backend: str | Sequence[str] = "asyncio",
    store: str = "memory",
    reuse_store: bool = False,
    cancel_after: float | None = None,
    isolate: bool = True,
    timeout: float = 600.0,
    progress: bool = False,
    entrypoint: str | None = None,
) -> FlowBench:
    """Measure `flow` (a Flow, or an entrypoint 'path/file.py:name' or 'module:name').

    Each round (`rounds` per backend) runs `runs` runs with `parameters`, at most
    `concurrency` (default: all of them) in flight at once, after `warmup` runs (default:
    min(runs, concurrency, 100)) that are not measured. `backend`: "asyncio", "uvloop",
    "trio", several of them, or "all" (those installed). `store`: "memory", "sqlite" (a fresh
    temporary file per round) or a store URL; a `sqlite:///` URL gets a fresh file beside the
    one it names per round (deleted after it) unless `reuse_store`. With `cancel_after`, runs
    still in flight after that many seconds are all cancelled at once, and the cancel is timed.
    A round's process is killed after `timeout` seconds. `isolate=False` measures in this
    process (for debugging: memory figures then mean little). `entrypoint`: how a measurement
    process imports a Flow given as an object (default: its module and name, or the file of
    the script that defines it). Blocks until done; call it from synchronous code (or a worker
    thread). Raises `BenchError` for bad input.
    """
    loaded, target = _resolve(flow, isolate) if entrypoint is None else (flow, entrypoint)
    if not isinstance(loaded, Flow):
        raise BenchError(f"with an entrypoint, expected a flow, got {type(loaded).__name__}")
    n = _at_least(runs, 1, "runs")
    concurrency = n if concurrency is None else _at_least(concurrency, 1, "concurrency")
    rounds = _at_least(rounds, 1, "rounds")
    warmup = min(n, concurrency, 100) if warmup is None else _at_least(warmup, 0, "warmup")
    if cancel_after is not None and not (cancel_after >= 0 and math.isfinite(cancel_after)):
        raise BenchError(f"cancel_after must be a number of seconds >= 0, got {cancel_after!r}")
    if not timeout > 0:
        raise BenchError(f"timeout must be > 0 seconds, got {timeout!r}")
    params = _check_parameters(loaded, parameters, isolate)
    backends, skipped = _backends(backend)
    settings: dict[str, Any] = {
        "target": target,
        "flow": loaded.name,
        "parameters": params,
        "runs": n,
        "concurrency": concurrency,
        "rounds": rounds,
        "warmup": warmup,
        "backends": list(backends),
        "backends_skipped": skipped,
        "store": store,
        "reuse_store": reuse_store,
        "cancel_after": cancel_after,
        "isolated_processes": isolate,
        "timeout": timeout,
    }
    started, clock = dt.datetime.now().astimezone(), time.monotonic()
    versions = report.versions()
    with tempfile.TemporaryDirectory(prefix="flowactor-bench-") as tmp:
        _probe_store(store, tmp, reuse_store)
        config = _Rounds(rounds=rounds, isolate=isolate, timeout=timeout, workdir=Path(tmp))
        job = {k: settings[k] for k in ("target", "parameters", "concurrency", "warmup")}
        job.update(n=n, store=store, reuse_store=reuse_store, cancel_after=cancel_after)
        results = []
        shown = figures(cancel_after is not None)
        with progress_display(progress) as bars:
            session = Session(config, bars)
            for name in backends:
                params = {**job, "backend": name}
                label = f"{loaded.name} · {name} · N={n:,}"
                measured, errors = session.measure(JOB, params, label=label)
                row = Row(loaded.name, name, params, [dict(r) for r in measured], shown, errors)
                results.append(BackendResult(name, row))
    return FlowBench(
        target=target,
        flow_name=loaded.name,
        settings=settings,
        results=tuple(results),
        started=started,
        elapsed_s=time.monotonic() - clock,
        versions=versions,
    )


def _at_least(value: int, low: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise BenchError(f"{name} must be a whole number >= {low}, got {value!r}")
    return value


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def load_target(target: str) -> tuple[Flow[..., Any], str]:
    """The flow at TARGET ('path/to/file.py:flow' or 'module:flow'), and the entrypoint a
    measurement process imports it by (a file's path made absolute); `BenchError` if it does
    not load."""
    module, sep, name = target.rpartition(":")
    if sep and (module.endswith(".py") or "/" in module or "\\" in module):
        target = f"{os.path.abspath(module)}:{name}"  # the same file from any folder
    try:
        return load_flow_from_entrypoint(target), target
    except Exception as exc:  # whatever importing the user's module raised
        raise BenchError(f"cannot load {target}: {_one_line(exc)}") from exc


def _resolve(flow: Flow[..., Any] | str, isolate: bool) -> tuple[Flow[..., Any], str]:
    """The flow, and the entrypoint a measurement process imports it by."""
    if isinstance(flow, str):
        return load_target(flow)
    if not isinstance(flow, Flow):
        raise BenchError(f"expected a flow or an entrypoint string, got {type(flow).__name__}")
    module, _, qualname = flow.entrypoint.partition(":")
    if "<locals>" in qualname:
        raise BenchError(
            f"flow {flow.name!r} is defined inside a function: a measurement process can only "
            "import a flow defined at module level"
        )
    if module == "__main__" and isolate:
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if main_file is None:
            raise BenchError(
                f"flow {flow.name!r} was defined interactively: put it in a file, so that a "
                "measurement process can import it"
            )
        return flow, f"{os.path.abspath(main_file)}:{qualname}"
    return flow, flow.entrypoint


def _check_parameters(
    flow: Flow[..., Any], parameters: Mapping[str, Any] | None, isolate: bool
) -> dict[str, Any]:
    """The parameters, checked against the flow's signature and type hints."""
    params = dict(parameters or {})
    signature = inspect.signature(flow.fn)
    try:
        signature.bind(**params)
    except TypeError as exc:
        raise BenchError(f"parameters do not fit {flow.name}{signature}: {exc}") from None
    if flow.validate_parameters:
        try:
            flow.validate_parameters_for(params)
        except ParameterTypeError as exc:
            raise BenchError(_one_line(exc)) from None
    if isolate:
        try:
            json.dumps(params)
        except (TypeError, ValueError) as exc:
            raise BenchError(
                f"parameters must be JSON values to reach the measurement processes: {exc}"
            ) from None
    return params


def _backends(backend: str | Sequence[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The backends to measure, in order, and why others are not: "all" is those installed."""
    names = [backend] if isinstance(backend, str) else list(backend)
    if "all" in names:
        problems = {b: loops.available(b) for b in BACKENDS}
        skipped = {b: problem for b, problem in problems.items() if problem is not None}
        return tuple(b for b in BACKENDS if b not in skipped), skipped
    for name in names:
        problem = loops.available(name)
        if problem is not None:
            raise BenchError(f"backend {name}: {problem}")
    if not names:
        raise BenchError("no backend to measure")
    return tuple(dict.fromkeys(names)), {}


def _probe_store(store: str, workdir: str, reuse: bool) -> None:
    """Open and close the store a round would use, so a bad one fails before any round."""
    url = fresh_url(store, workdir, "probe", reuse=reuse)

    async def probe() -> None:
        opened = open_store(url)
        await opened.open()
        await opened.close()

    # A thread of its own, with its own event loop: the caller may be inside one already.
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bench-probe") as pool:
        try:
            pool.submit(anyio.run, probe).result()
        except Exception as exc:
            raise BenchError(f"store {store!r} cannot be opened: {_one_line(exc)}") from exc
        finally:
            if not reuse:
                remove_sqlite(url)
