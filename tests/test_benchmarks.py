"""Smoke tests of the benchmark harness: every scenario, tiny, in fresh processes.

Each run goes through the real command line (`benchmarks.cli.main`), so the subprocess
protocol, the JSON document and the target checks are all exercised. Targets may PASS or FAIL
here (tiny N on a busy machine); what must hold is that every run of every round completed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import cli
from benchmarks.scenarios import SCENARIOS
from runtime.bench import stores
from runtime.bench.isolate import JobFailed, run_job
from runtime.bench.measure import percentile
from runtime.bench.model import Summary, Target

SIZED = ["throughput", "floor", "direct", "latency", "sync", "cancel", "memory"]
STORES = ["memory"] + (["sqlite"] if stores.unavailable("sqlite") is None else [])


def _run(tmp: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp / "results.json"
    code = cli.main(["--smoke", "--no-progress", "--json", str(out), *args])
    return code, json.loads(out.read_text())


def _check_document(document: dict[str, Any], names: list[str]) -> None:
    assert document["schema"] == "flowactor-bench/1"
    assert {"cpu_count", "cpus_usable", "platform", "memory_gib"} <= document["machine"].keys()
    assert {"python", "anyio", "flowactor", "sqlite"} <= document["versions"].keys()
    assert {"fingerprint_start", "fingerprint_end", "changed_during_run"} <= set(document["source"])
    assert document["parameters"]["rounds"] == 1
    assert document["parameters"]["smoke"] is True
    assert [s["name"] for s in document["scenarios"]] == names
    for scenario in document["scenarios"]:
        if scenario["skipped"]:
            continue
        assert scenario["rows"], scenario["name"]
        for row in scenario["rows"]:
            where = f"{scenario['name']} / {row['case']}: {row['errors']}"
            assert row["completed"] is True, where
            assert not row["errors"], where
            assert len(row["rounds"]) == 1, where
            assert all(r["ok"] is True for r in row["rounds"]), where
            for figure in row["figures"]:
                stats = row["summary"][figure["key"]]
                assert stats["median"] is not None, (where, figure["key"])
                assert stats["min"] <= stats["median"] <= stats["max"]
            for target in row["targets"]:
                assert target["result"] in {"PASS", "FAIL"}
                assert target["value"] is not None


@pytest.fixture(scope="module")
def asyncio_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("bench-asyncio")
    store_args = [a for s in STORES for a in ("--store", s)]
    return _run(tmp, *SIZED, *store_args)


def test_every_sized_scenario_completes_on_asyncio(
    asyncio_run: tuple[int, dict[str, Any]],
) -> None:
    code, document = asyncio_run
    assert code == 0
    _check_document(document, SIZED)
    assert document["parameters"]["stores"] == STORES
    by_name = {s["name"]: s for s in document["scenarios"]}
    # The checks each scenario makes against its target, in the shape the target is set for.
    throughput = by_name["throughput"]["rows"]
    assert [t["metric"] for t in throughput[0]["targets"]] == ["runs_per_s"]
    assert throughput[0]["params"]["shape"] == "submit"
    assert throughput[0]["rounds"][0]["submitters"] == 1
    assert by_name["floor"]["rows"][0]["summary"]["ratio"]["median"] > 0
    assert by_name["floor"]["rows"][0]["targets"][0]["threshold"] == 4.0
    direct = by_name["direct"]["rows"][0]
    assert direct["targets"][0]["metric"] == "direct_vs_submit"
    assert {"direct_us_per_run", "submit_us_per_run"} <= direct["summary"].keys()
    assert by_name["cancel"]["rows"][0]["rounds"][0]["completed"] == 100
    memory = by_name["memory"]["rows"]
    assert [r["case"].split(" · ")[0] for r in memory[:2]] == ["flowactor", "floor"]
    assert memory[0]["targets"][0]["metric"] == "traced_kib_per_run"
    assert memory[0]["summary"]["floor_traced_kib_per_run"]["median"] > 0
    if "sqlite" in STORES:
        # SQLite is judged with submit_many; 64 tasks sharing the submits is a comparison row.
        sqlite = [r for r in throughput if r["params"]["store"] == "sqlite"]
        assert [r["params"]["shape"] for r in sqlite] == ["submit_many", "submit", "shared"]
        assert sqlite[0]["targets"][0]["threshold"] == 6_000
        assert sqlite[2]["rounds"][0]["submitters"] == 64


def test_every_sized_scenario_completes_on_trio(tmp_path: Path) -> None:
    # 3 submitters do not divide the smoke N: every run must still be submitted once.
    code, document = _run(tmp_path, *SIZED, "--backend", "trio", "--submitters", "3")
    assert code == 0
    _check_document(document, SIZED)
    rows = [row for s in document["scenarios"] for row in s["rows"]]
    assert all(row["params"]["backend"] == "trio" for row in rows)
    if "sqlite" in STORES:
        (shared,) = [
            r for r in document["scenarios"][0]["rows"] if r["params"]["shape"] == "shared"
        ]
        round_ = shared["rounds"][0]
        assert (round_["submitters"], round_["completed"]) == (3, round_["expected"])


def test_backends_side_by_side(tmp_path: Path) -> None:
    code, document = _run(tmp_path, "backends", "--runs", "100", "--store", "memory")
    assert code == 0
    _check_document(document, ["backends"])
    rows = document["scenarios"][0]["rows"]
    assert [row["params"]["backend"] for row in rows] == ["asyncio", "uvloop", "trio"]
    assert rows[0]["summary"]["time_vs_asyncio"]["median"] == pytest.approx(1.0)
    assert [t["metric"] for t in rows[2]["targets"]] == ["time_vs_asyncio"]


@pytest.mark.skipif(importlib.util.find_spec("dbos") is None, reason="dbos not installed")
def test_dbos_beside_flowactor(tmp_path: Path) -> None:
    code, document = _run(tmp_path, "dbos", "--dbos-runs", "10", "--dbos-threads", "8")
    assert code == 0
    _check_document(document, ["dbos"])
    dbos, flowactor = document["scenarios"][0]["rows"]
    assert "max_executor_threads=8" in dbos["case"]
    assert dbos["rounds"][0]["completed"] == 10
    assert flowactor["params"] == {**flowactor["params"], "store": "sqlite", "shape": "direct"}
    (target,) = flowactor["targets"]
    assert (target["metric"], target["threshold"]) == ("vs_dbos", 30.0)


@pytest.mark.skipif(importlib.util.find_spec("dbos") is not None, reason="dbos installed")
def test_dbos_is_skipped_when_not_installed(tmp_path: Path) -> None:
    code, document = _run(tmp_path, "dbos")
    assert code == 0
    (scenario,) = document["scenarios"]
    assert "not installed" in scenario["skipped"]


@pytest.mark.skipif(importlib.util.find_spec("prefect") is not None, reason="prefect installed")
def test_prefect_is_skipped_when_not_installed(tmp_path: Path) -> None:
    code, document = _run(tmp_path, "prefect")
    assert code == 0
    (scenario,) = document["scenarios"]
    assert "not installed" in scenario["skipped"]
    assert scenario["rows"] == []


def test_plot(asyncio_run: tuple[int, dict[str, Any]], tmp_path: Path) -> None:
    from runtime.bench.plot import MissingExtra, write_plot

    _, document = asyncio_run
    out = tmp_path / "chart.png"
    if importlib.util.find_spec("matplotlib") is None:
        with pytest.raises(MissingExtra, match="matplotlib"):
            write_plot(document, out)
        assert cli.main(["--smoke", "--plot", str(out), "throughput"]) == 2
    else:
        write_plot(document, out)
        assert out.read_bytes().startswith(b"\x89PNG")


def test_unavailable_store_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "unavailable", lambda store: f"no {store} store here")
    assert cli.main(["--smoke", "--store", "sqlite", "throughput"]) == 2
    assert "--store sqlite: no sqlite store here" in capsys.readouterr().err


def test_a_stalled_process_is_killed() -> None:
    job = "runtime.bench.isolate:idle_job"
    assert run_job(job, {"seconds": 0.1}, stall=5.0)["ok"] is True
    with pytest.raises(JobFailed, match=r"stalled: no progress for 0\.5 s"):
        run_job(job, {"seconds": 30}, stall=0.5)


def test_defaults_measure_every_target() -> None:
    config, _ = cli.parse_args([])
    assert config.scenarios == tuple(SCENARIOS)
    assert config.stores == tuple(STORES)  # SQLite's targets need its rows
    assert (config.dbos_runs, config.dbos_threads, config.submitters) == (1_000, 64, 64)


@pytest.mark.parametrize(
    "argv", [["nonsense"], ["--submitters", "0", "throughput"], ["--dbos-runs", "0", "dbos"]]
)
def test_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2


def test_flowactor_bench_suite_forwards(capfd: pytest.CaptureFixture[str]) -> None:
    from runtime.cli import main as flowactor_main

    assert flowactor_main(["bench", "--suite", "--help"]) == 0
    out = capfd.readouterr().out  # from the harness's own process
    assert "python -m benchmarks" in out
    assert all(name in out for name in SCENARIOS)
    assert flowactor_main(["bench", "--suite", "nonsense"]) == 2
    assert "unknown scenario(s): nonsense" in capfd.readouterr().err


def test_statistics() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([5.0], 99) == 5.0
    summary = Summary.of([3.0, 1.0, 2.0])
    assert (summary.median, summary.min, summary.max) == (2.0, 1.0, 3.0)
    assert Target("x", ">=", 2.0, "x >= 2").holds(2.0)
    assert not Target("x", "<", 2.0, "x < 2").holds(2.0)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_skeleton_measures_every_shape(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import skeleton

    skeleton.main(["--runs", "50", "--rounds", "1", "--backend", backend])
    out = capsys.readouterr().out
    for shape in ("floor", "actor", "inline", "flowactor"):
        (line,) = [line for line in out.splitlines() if line.split()[:1] == [shape]]
        assert "µs per run" in line and "x the floor" in line
    with pytest.raises(SystemExit):
        skeleton.main(["--runs", "0"])
