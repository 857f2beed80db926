"""Run loggers and log_prints: every record names its run."""

from __future__ import annotations

import logging

import pytest

from runtime import Runtime, flow, get_run_logger

pytestmark = pytest.mark.anyio


async def test_run_logger_records_carry_the_runs_id_and_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @flow
    async def chatty() -> None:
        get_run_logger().info("hello from the run")

    with caplog.at_level(logging.INFO, logger="flowactor.flow_runs"):
        async with Runtime() as rt:
            h = await rt.submit(chatty)
            await h.wait()
    (record,) = [r for r in caplog.records if "hello from the run" in r.getMessage()]
    assert record.flow_run_id == str(h.id)  # type: ignore[attr-defined]
    assert record.flow_run_name == h.flow_run.name  # type: ignore[attr-defined]
    assert record.flow_name == "chatty"  # type: ignore[attr-defined]


@pytest.mark.parametrize("is_async", [True, False], ids=["async", "sync"])
async def test_log_prints_sends_print_to_the_run_logger(
    is_async: bool, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    async def aprints() -> None:
        print("printed", "words")

    def sprints() -> None:
        print("printed", "words")

    printing = flow(aprints if is_async else sprints, log_prints=True)
    quiet = flow(aprints if is_async else sprints, name="quiet")
    with caplog.at_level(logging.INFO, logger="flowactor.flow_runs"):
        async with Runtime() as rt:
            h = await rt.submit(printing)
            await h.wait()
            await (await rt.submit(quiet)).wait()
    logged = [r for r in caplog.records if "printed words" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].flow_run_id == str(h.id)  # type: ignore[attr-defined]
    assert capsys.readouterr().out.count("printed words") == 1  # the quiet flow printed


def test_get_run_logger_outside_a_run_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="outside of a flow run"):
        get_run_logger()
