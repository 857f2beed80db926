"""`runtime.bench.measure_flow` from Python, and `flowactor bench` on uvloop where installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from runtime import flow
from runtime.bench import BenchError, measure_flow
from runtime.bench.stores import fresh_url, sqlite_path
from runtime.cli import main
from tests.flows.basic import triple


@flow
async def echo(value: Any) -> Any:
    return value


def test_a_flow_object_is_measured_in_fresh_processes() -> None:
    result = measure_flow(triple, {"x": 2}, runs=20, rounds=2, backend=["asyncio", "trio"])
    assert result.ok and result.backends == ["asyncio", "trio"]
    assert result.target == "tests.flows.basic:triple"  # how a fresh process imports it
    for backend in result.results:
        assert backend.states == {"completed": 40, "failed": 0, "crashed": 0, "cancelled": 0}
        assert backend.runs_per_s > 0 and backend.latency_p50_ms <= backend.latency_p99_ms
        assert len(backend.summary("runs_per_s").values) == 2
    document = result.document(argv=["test"])
    assert document["parameters"]["argv"] == ["test"]
    assert document["scenarios"][0]["rows"][1]["case"] == "trio"


def test_in_process() -> None:
    result = measure_flow(triple, {"x": 1}, runs=10, rounds=1, backend="trio", isolate=False)
    assert result["trio"].states["completed"] == 10
    with pytest.raises(KeyError, match="asyncio"):
        result["asyncio"]


def test_bad_input_raises_bench_error() -> None:
    @flow
    async def local() -> None:
        return None

    with pytest.raises(BenchError, match="inside a function"):
        measure_flow(local)
    with pytest.raises(BenchError, match="runs must be"):
        measure_flow(triple, {"x": 1}, runs=0)
    with pytest.raises(BenchError, match="unknown backend"):
        measure_flow(triple, {"x": 1}, backend="twisted")
    with pytest.raises(BenchError, match="JSON values"):
        measure_flow(echo, {"value": {1, 2}}, runs=1)
    with pytest.raises(BenchError, match="parameters do not fit"):
        measure_flow(triple)
    with pytest.raises(BenchError, match="cannot load"):
        measure_flow("tests.flows.basic:not_a_flow")


def test_fresh_sqlite_files_beside_the_one_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db?synchronous=full"
    fresh = fresh_url(url, "/unused", "run")
    assert fresh.startswith(f"sqlite:///{tmp_path}/runs-run-") and fresh.endswith(
        ".db?synchronous=full"
    )
    assert sqlite_path(fresh) == tmp_path / fresh.split("/")[-1].partition("?")[0]
    assert fresh_url(url, "/unused", "run", reuse=True) == url
    assert fresh_url("sqlite", str(tmp_path), "run").startswith(f"sqlite:///{tmp_path}/run-")
    assert fresh_url("memory", str(tmp_path), "run") == "memory://"


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop not installed")
def test_flowactor_bench_on_uvloop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "uvloop.json"
    argv = ["bench", "tests/flows/basic.py:triple", "-p", "x=3", "--backend", "uvloop"]
    assert main([*argv, "--runs", "10", "--rounds", "1", "--no-progress", "--json", str(out)]) == 0
    assert "uvloop" in capsys.readouterr().out
    (row,) = json.loads(out.read_text())["scenarios"][0]["rows"]
    assert (row["case"], row["totals"]["completed"]) == ("uvloop", 10)
