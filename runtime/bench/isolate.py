"""Process isolation: each measured round runs in a fresh Python process.

The parent starts `python -P -m runtime.bench.isolate JOB` and reads JSON lines from its
stdout: progress reports while it runs, then its result (or the error that ended it). A job is
a function `job(params, probe) -> dict` named as `module:function`, importable in the child:
the child's import path is the parent's `sys.path` (after any `pythonpath` given), so it
imports the same flowactor and the same user modules as the parent, whatever its working
directory holds. With `isolate=False` the job runs in this process instead (for debugging and
fast tests; RSS figures then mean little).
"""

from __future__ import annotations

import contextlib
import cProfile
import importlib
import json
import logging
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from .measure import Probe

__all__ = ["JobFailed", "idle_job", "run_job"]

_MARK = "@@bench "

Job = Callable[[dict[str, Any], Probe], dict[str, Any]]
ProgressFn = Callable[[dict[str, Any]], None]


class JobFailed(RuntimeError):
    """A measurement process crashed, timed out or reported an error."""


def _resolve(name: str) -> Job:
    module, _, attr = name.partition(":")
    fn: Job = getattr(importlib.import_module(module), attr)
    return fn


def _call(name: str, params: dict[str, Any], probe: Probe, profile: str | None) -> dict[str, Any]:
    job = _resolve(name)
    if profile is None:
        return job(params, probe)
    profiler = cProfile.Profile()
    try:
        return profiler.runcall(job, params, probe)
    finally:
        profiler.dump_stats(profile)


def run_job(
    name: str,
    params: dict[str, Any],
    *,
    isolate: bool = True,
    timeout: float = 900.0,
    stall: float | None = None,
    profile: Path | None = None,
    on_progress: ProgressFn | None = None,
    pythonpath: Sequence[str] = (),
) -> dict[str, Any]:
    """Run job `name` with `params` and return what it reports; `JobFailed` if it cannot.

    A measurement process is killed after `timeout` seconds, or once its progress report has
    not changed for `stall` seconds (a run that never ends would otherwise hang the harness).
    `pythonpath`: folders the child imports from first (the job's own package, say).
    """
    prof = str(profile) if profile is not None else None
    if not isolate:
        try:
            return _call(name, params, Probe(on_progress), prof)
        except Exception as exc:
            raise JobFailed(f"{name}: {type(exc).__name__}: {exc}") from exc
    spec = json.dumps({"job": name, "params": params, "profile": prof})
    child_env = dict(os.environ)
    child_env["PYTHONPATH"] = os.pathsep.join(_import_path(pythonpath))
    # -P: the working directory does not go first on the child's path (a folder there named
    # like a package must not shadow the flowactor this process runs).
    argv = [sys.executable, "-P", "-m", "runtime.bench.isolate", spec]
    with (
        tempfile.TemporaryFile("w+") as errors,
        subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=errors, env=child_env, text=True
        ) as proc,
    ):
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        try:
            result = _read(proc, proc.stdout, timeout, stall, on_progress)
            proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
        except subprocess.TimeoutExpired:
            result = {"error": f"timed out after {timeout:g} s"}
        finally:
            if proc.poll() is None:
                proc.kill()  # only the measurement process this call started
            proc.wait()
        errors.seek(0)
        tail = errors.read()[-4000:]
    if "result" in result and proc.returncode == 0:
        value: dict[str, Any] = result["result"]
        return value
    detail = result.get("error") or tail or f"exit status {proc.returncode}"
    raise JobFailed(f"{name} failed (exit status {proc.returncode}):\n{detail}".rstrip())


def _import_path(first: Sequence[str]) -> list[str]:
    """`first`, then this process's own import path (absolute, without repeats)."""
    entries = [os.path.abspath(p) for p in (*first, *sys.path)]
    return list(dict.fromkeys(entries))


def _read(
    proc: subprocess.Popen[str],
    stdout: IO[str],
    timeout: float,
    stall: float | None,
    on_progress: ProgressFn | None,
) -> dict[str, Any]:
    """Collect the child's JSON lines until it exits, `timeout` passes or it stalls."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="job-reader", daemon=True).start()
    deadline = time.monotonic() + timeout
    final: dict[str, Any] = {}
    last: dict[str, Any] = {}
    changed = time.monotonic()
    while True:
        now = time.monotonic()
        remaining = deadline - now
        if remaining <= 0:
            proc.kill()
            return {"error": f"timed out after {timeout:g} s"}
        if stall is not None and now - changed > stall:
            proc.kill()
            where = (
                f"{last.get('done', 0):,} of {last.get('total', 0):,} in stage "
                f"{last.get('stage', '?')!r}"
                if last
                else "nothing reported"
            )
            return {"error": f"stalled: no progress for {stall:g} s ({where})"}
        try:
            line = lines.get(timeout=min(remaining, 1.0))
        except queue.Empty:
            continue
        if line is None:
            return final
        if not line.startswith(_MARK):
            continue
        message = json.loads(line[len(_MARK) :])
        if "progress" in message:
            if message["progress"] != last:
                last, changed = message["progress"], time.monotonic()
            if on_progress is not None:
                on_progress(last)
        else:
            final = message


def idle_job(params: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """A job that reports once, then does nothing for `params["seconds"]` (checks the harness)."""
    probe.start(1, "idle")
    with probe.sampling():
        time.sleep(float(params["seconds"]))
    return {"ok": True, "slept_s": float(params["seconds"])}


def _child(argv: list[str]) -> int:
    """The measurement process: run one job, report on the original stdout."""
    spec = json.loads(argv[0])
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the job prints goes to stderr, never into the protocol
    lock = threading.Lock()

    def emit(message: dict[str, Any]) -> None:
        with lock:
            out.write(_MARK + json.dumps(message) + "\n")
            out.flush()

    logging.basicConfig(level=logging.WARNING)
    try:
        result = _call(
            spec["job"],
            spec["params"],
            Probe(lambda p: emit({"progress": p})),
            spec.get("profile"),
        )
    except BaseException as exc:
        emit({"error": "".join(traceback.format_exception(exc))})
        return 1
    emit({"result": result})
    with contextlib.suppress(OSError):
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
