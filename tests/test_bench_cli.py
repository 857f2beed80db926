"""`flowactor bench TARGET` from a wheel installed in a fresh virtual environment.

The wheel is built from this checkout (its packages, pyproject.toml and README copied to a
scratch folder first, so the checkout gets no build/ folder) and installed with its
dependencies from the configured package index, once per session, into a venv without the
optional extras. Every command runs from a temporary folder holding only the flows a test
wrote, with no source tree on the path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

FLOWS = """\
import anyio

from runtime import flow


@flow
async def quick(x: int = 1) -> int:
    return x


_calls = 0


@flow
async def every_other(x: int = 1) -> int:
    global _calls
    _calls += 1
    if _calls % 2 == 0:
        raise ValueError("every other run fails")
    return x


@flow
async def sleeper(seconds: float = 3600.0) -> None:
    await anyio.sleep(seconds)


@flow
async def broken() -> None:
    raise ValueError("broken on purpose")
"""


@dataclasses.dataclass(frozen=True)
class Installed:
    """The venv flowactor was installed into, and a folder to run commands from."""

    prefix: Path
    workdir: Path
    env: dict[str, str]

    def run(self, *args: str, program: str = "flowactor") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.prefix / "bin" / program), *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def bench(self, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        out = self.workdir / f"bench-{abs(hash(args)):x}.json"
        done = self.run("bench", *args, "--json", str(out), "--no-progress")
        assert done.returncode in (0, 1), done.stderr
        return done, json.loads(out.read_text())

    def has(self, module: str) -> bool:
        code = f"import importlib.util; print(importlib.util.find_spec({module!r}) is not None)"
        return self.run("-c", code, program="python").stdout.strip() == "True"


def _check(args: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    source = base / "source"
    for package in ("actors", "runtime"):
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _check([*pip, "wheel", "-q", "--no-deps", "-w", str(base / "wheels"), str(source)])
    (wheel,) = (base / "wheels").glob("flowactor-*.whl")
    prefix = base / "venv"
    venv.create(prefix, with_pip=False)  # this process's pip installs into it
    _check([*pip, "--python", str(prefix / "bin" / "python"), "install", "-q", str(wheel)])
    workdir = base / "work"
    workdir.mkdir()
    (workdir / "flows.py").write_text(FLOWS)
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env = {**keep, "FLOWACTOR_HOME": str(base / "home"), "FLOWACTOR_STORE": "memory://"}
    return Installed(prefix, workdir, env)


def _one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("flowactor: ") and "Traceback" not in line
    for word in words:
        assert word in line


def _row_checks(row: dict[str, Any], runs: int) -> None:
    """Every figure `flowactor bench` promises is in the row."""
    summary = row["summary"]
    for key in ("runs_per_s", "us_per_run", "latency_p50_ms", "latency_p99_ms", "peak_rss_mb"):
        assert summary[key]["median"] > 0, (row["case"], key)
    assert summary["latency_p50_ms"]["median"] <= summary["latency_p99_ms"]["median"]
    assert summary["kib_per_run"]["median"] is not None
    assert {"completed", "failed", "crashed", "cancelled"} <= set(row["totals"])
    assert all(r["n"] == runs and r["submitted"] == runs for r in row["rounds"])


def test_installed_from_the_wheel(installed: Installed) -> None:
    where = installed.run("-c", "import runtime; print(runtime.__file__)", program="python")
    assert Path(where.stdout.strip()).is_relative_to(installed.prefix)
    version = installed.run("--version")
    assert version.returncode == 0 and "flowactor, version" in version.stdout
    helped = installed.run("--help")
    assert "run" in helped.stdout and "bench" in helped.stdout


def test_bench_on_each_backend(installed: Installed) -> None:
    backends = ["asyncio", "trio"] + (["uvloop"] if installed.has("uvloop") else [])
    args = [a for b in backends for a in ("--backend", b)]
    done, document = installed.bench(
        "flows.py:quick", "-p", "x=2", "--runs", "30", "--rounds", "2", *args
    )
    assert done.returncode == 0, done.stdout + done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", *backends]
    for label in ("runs/s", "latency p50", "latency p99", "runs Completed", "runs Failed"):
        assert any(line.startswith(label) for line in done.stdout.splitlines()), label
    assert "memory per concurrent run" in done.stdout and "peak RSS" in done.stdout
    assert document["schema"] == "flowactor-bench/1"
    assert {"cpu_count", "platform"} <= document["machine"].keys()
    assert document["versions"]["flowactor"] and document["versions"]["git_commit"] is None
    parameters = document["parameters"]
    assert parameters["target"].endswith("flows.py:quick")
    assert (parameters["parameters"], parameters["backends"]) == ({"x": 2}, backends)
    (scenario,) = document["scenarios"]
    assert [row["case"] for row in scenario["rows"]] == backends
    for row in scenario["rows"]:
        assert row["completed"] is True and not row["errors"]
        assert row["totals"] == {"completed": 60, "failed": 0, "crashed": 0, "cancelled": 0}
        _row_checks(row, 30)


def test_a_failing_flow_shows_in_the_counts(installed: Installed) -> None:
    done, document = installed.bench("flows.py:every_other", "--runs", "20", "--rounds", "2")
    assert done.returncode == 1  # not every run completed: said, and measured all the same
    failed = next(line for line in done.stdout.splitlines() if line.startswith("runs Failed"))
    assert failed.split()[-1] == "20"
    assert "not every run ended as expected (20 Completed, 20 Failed" in done.stdout
    (row,) = document["scenarios"][0]["rows"]
    assert row["completed"] is False and not row["errors"]
    assert row["totals"] == {"completed": 20, "failed": 20, "crashed": 0, "cancelled": 0}
    assert [(r["completed"], r["failed"], r["persisted_failed"]) for r in row["rounds"]] == [
        (10, 10, 10),
        (10, 10, 10),
    ]
    _row_checks(row, 20)


def test_cancel_after(installed: Installed) -> None:
    done, document = installed.bench(
        "flows.py:sleeper",
        *("--runs", "20", "--rounds", "1", "--cancel-after", "0.3", "--store", "sqlite"),
        *("--backend", "asyncio", "--backend", "trio"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cancel: until all final" in done.stdout and "cancel: per run p99" in done.stdout
    for row in document["scenarios"][0]["rows"]:
        assert row["completed"] is True, row
        states = {"completed": 0, "failed": 0, "crashed": 0, "cancelled": 20}
        assert row["totals"] == {**states, "cancel_requested": 20, "not_submitted": 0}
        (round_,) = row["rounds"]
        assert round_["persisted_cancelled"] == round_["cancel_requested"] == 20
        summary = row["summary"]
        p50, p99 = summary["cancel_p50_ms"]["median"], summary["cancel_p99_ms"]["median"]
        assert 0 < p50 <= p99 <= summary["cancel_total_ms"]["median"]
    assert not list(installed.workdir.glob("*.db"))  # fresh SQLite files were removed


def test_run_from_the_installed_package(installed: Installed) -> None:
    done = installed.run("run", "flows.py:quick", "-p", "x=7")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^states: Pending -> Running -> Completed$", done.stdout, re.M)
    assert "result: 7" in done.stdout
    failed = installed.run("run", "flows.py:broken")
    assert failed.returncode == 1
    assert "Failed: " in failed.stderr and "broken on purpose" in failed.stderr
    _one_line_error(installed.run("run", "missing.py:quick"), "no such flow file")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["missing.py:quick"], ["cannot load", "no such flow file"]),
        (["flows.py:nowhere"], ["cannot load", "nowhere"]),
        (["flows.py:quick", "-p", "x=abc"], ["invalid parameters", "x: expected int"]),
        (["flows.py:quick", "-p", "y=1"], ["parameters do not fit", "'y'"]),
        (["flows.py:quick", "--store", "sqlite:///no/such/dir/runs.db"], ["cannot be opened"]),
        (["flows.py:quick", "--backend", "nosuch"], ["'--backend'", "nosuch"]),
        (["flows.py:quick", "--runs", "0"], ["'--runs'"]),
        ([], ["source checkout"]),  # the project's own scenarios are not installed
    ],
)
def test_bad_input_is_one_line(installed: Installed, args: list[str], words: list[str]) -> None:
    _one_line_error(installed.run("bench", *args), *words)


def test_a_missing_uvloop_is_one_line(installed: Installed) -> None:
    if installed.has("uvloop"):
        pytest.skip("uvloop is installed in the venv")
    done = installed.run("bench", "flows.py:quick", "--backend", "uvloop")
    _one_line_error(done, "uvloop is not installed")
    every = installed.run(
        "bench", "flows.py:quick", "--backend", "all", *("--runs", "5", "--rounds", "1")
    )
    assert every.returncode == 0 and "uvloop: not measured" in every.stdout


def test_the_readme_example_works_when_pasted(installed: Installed) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    (example,) = [b for b in blocks if "from runtime.bench import measure_flow" in b]
    script = installed.workdir / "bench_example.py"
    script.write_text(example)
    done = installed.run(str(script), program="python")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "runs/s" in done.stdout
    document = json.loads((installed.workdir / "bench.json").read_text())
    assert [row["case"] for row in document["scenarios"][0]["rows"]] == ["asyncio", "trio"]
