"""Flow parameters are validated laxly against their type hints; flow options at decoration.

Lax as in pydantic: lossless conversions are made ("123" -> 123), lossy or meaningless ones are
refused (3.5 for an int), and an instance of the hinted class is kept as it is.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import re
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import attrs
import msgspec
import pytest

from runtime import Flow, ParameterTypeError, Runtime, flow
from runtime.cli import main as flowactor_main
from tests._helpers import names

pytestmark = pytest.mark.anyio


@dataclasses.dataclass
class DC:
    name: str


class SubDC(DC):
    pass


@attrs.define
class AC:
    name: str


class Point(msgspec.Struct):
    x: int
    y: int


class Color(enum.Enum):
    RED = "red"


class Opaque:
    """A class neither msgspec nor cattrs knows: only its instances are valid."""


class FakeModel:
    """Duck-types a pydantic model (`model_validate`, `model_dump`) without pydantic."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def model_validate(cls, data: Any) -> FakeModel:
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise ValueError(f"1 validation error for FakeModel\nname\n  Field required: {data}")
        return cls(data["name"])

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return {"name": self.name}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FakeModel) and other.name == self.name

    def __repr__(self) -> str:
        return f"FakeModel({self.name!r})"


@flow
async def typed(
    n: int,
    flag: bool = False,
    items: list[int] = [],  # noqa: B006 - the signature of the issue's report
    dc: DC | None = None,
    day: datetime.date | None = None,
) -> dict[str, Any]:
    calls.append(n)
    return {"n": n, "flag": flag, "items": items, "dc": dc, "day": day}


calls: list[Any] = []


async def refused(
    rt: Runtime, fl: Flow[..., Any], parameter: str, *args: Any, **kwargs: Any
) -> str:
    """Submit a run that must end Failed on validating `parameter`; the error's message."""
    h = await rt.submit(fl, *args, **kwargs)
    state = await h.wait()
    assert state.is_failed(), (args, kwargs, state)
    with pytest.raises(ParameterTypeError, match=rf"\b{parameter}: expected") as caught:
        await h.result()
    assert await names(rt, h.id) == ["Pending", "Failed"]
    return str(caught.value)


# -- the cases ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("parameter", "parameters"),
    [
        pytest.param("n", {"n": 3.5}, id="n=3.5"),
        pytest.param("n", {"n": True}, id="n=True"),
        pytest.param("items", {"n": 1, "items": (1.5, 2.5)}, id="items=(1.5, 2.5)"),
        pytest.param("flag", {"n": 1, "flag": "maybe"}, id="flag=maybe"),
        pytest.param("day", {"n": 1, "day": 20240101}, id="day=20240101"),
    ],
)
async def test_lossy_or_meaningless_values_fail_the_run(
    parameter: str, parameters: dict[str, Any]
) -> None:
    calls.clear()
    async with Runtime() as rt:
        await refused(rt, typed, parameter, **parameters)
    assert calls == []  # the function never ran


async def test_lossless_values_are_converted_and_instances_kept() -> None:
    instance = DC("c")
    async with Runtime() as rt:
        assert await (await rt.submit(typed, "123")).result() == {
            "n": 123, "flag": False, "items": [], "dc": None, "day": None
        }  # fmt: skip
        got = await (await rt.submit(typed, 3.0, flag="false", items=("1", 2))).result()
        assert (type(got["n"]), got["n"], got["flag"], got["items"]) == (int, 3, False, [1, 2])
        got = await (await rt.submit(typed, 1, dc={"name": "d"}, day="2024-01-01")).result()
        assert (got["dc"], got["day"]) == (DC("d"), datetime.date(2024, 1, 1))
        got = await (await rt.submit(typed, 1, dc=instance)).result()
        assert got["dc"] is instance


async def test_a_refusal_is_one_line_naming_each_invalid_parameter() -> None:
    async with Runtime() as rt:
        message = await refused(rt, typed, "n", n=3.5, flag="maybe")
    assert "\n" not in message
    assert re.search(r"\bn: expected int, got 3\.5\b", message)
    assert re.search(r"\bflag: expected bool, got 'maybe'", message)


async def test_a_pydantic_like_model_instance_is_stored_and_runs() -> None:
    @flow
    async def modelled(m: FakeModel, ms: list[FakeModel]) -> tuple[FakeModel, list[FakeModel]]:
        return m, ms

    model = FakeModel("a")
    async with Runtime() as rt:
        h = await rt.submit(modelled, model, [{"name": "b"}])
        m, ms = await h.result()
        assert m is model and ms == [FakeModel("b")]
        # What the store kept (a SQLite store: the model's dump) validates back to the model.
        stored = (await rt.read_flow_run(h.id)).parameters
        assert await (await rt.submit(modelled, **stored)).result() == (model, [FakeModel("b")])
        await refused(rt, modelled, "m", m={"nom": "a"}, ms=[])
        await refused(rt, modelled, "ms", m=model, ms=[3])


# -- each kind of hint ---------------------------------------------------------------------------
KEPT = object()  # the very value submitted comes back
REFUSED = object()  # the run ends Failed with ParameterTypeError
_OPAQUE, _SUB, _AC, _POINT, _MODEL = Opaque(), SubDC("s"), AC("a"), Point(1, 2), FakeModel("m")

CASES: dict[str, list[tuple[Any, Any, Any]]] = {
    "int": [
        (int, "123", 123),
        (int, 3.0, 3),
        (int, "3.0", 3),
        (int, 3.5, REFUSED),
        (int, True, REFUSED),
        (int, "three", REFUSED),
        (int, None, REFUSED),
    ],
    "float": [(float, 1, 1.0), (float, "2.5", 2.5), (float, True, REFUSED), (float, "x", REFUSED)],
    "bool": [
        (bool, "false", False),
        (bool, "True", True),
        (bool, 0, False),
        (bool, "maybe", REFUSED),
        (bool, 2, REFUSED),
    ],
    "str": [(str, "x", KEPT), (str, 123, REFUSED), (str, b"x", REFUSED)],
    "dates": [
        (datetime.date, "2024-01-01", datetime.date(2024, 1, 1)),
        (datetime.date, 20240101, REFUSED),
        (datetime.date, "2024-13-01", REFUSED),
        (datetime.datetime, "2024-01-01T10:00:00", datetime.datetime(2024, 1, 1, 10)),
        (datetime.timedelta, 90, datetime.timedelta(seconds=90)),
    ],
    "containers": [
        (list[int], (1, "2"), [1, 2]),
        (list[int], (1.5, 2.5), REFUSED),
        (list[int], "12", REFUSED),
        (tuple[int, str], [1, "a"], (1, "a")),
        (tuple[int, str], [1], REFUSED),
        (dict[str, list[int]], {"a": ["1"]}, {"a": [1]}),
        (dict[str, list[int]], {"a": [1.5]}, REFUSED),
        (set[int], [1, 1, "2"], {1, 2}),
        (list[DC], [{"name": "a"}], [DC("a")]),
        (list, (1, 2), [1, 2]),
    ],
    "optional_and_unions": [
        (int | None, None, None),
        (int | None, "3", 3),
        (int | None, 3.5, REFUSED),
        (int | str, "3", "3"),
        (int | str, 3, 3),
        (int | str, 3.0, 3),
        (str | int, [3], REFUSED),
        # Unions msgspec cannot take as a whole are tried member by member.
        (DC | AC, _AC, KEPT),
        (DC | AC, {"name": "x"}, DC("x")),
        (DC | AC, 1, REFUSED),
        (Color | str, "red", "red"),
        (Callable[[int], int] | int, "3", 3),
        (Callable[[int], int] | None, 3, REFUSED),
    ],
    "literals_and_enums": [
        (Literal["a", "b"], "a", "a"),
        (Literal["a", "b"], "c", REFUSED),
        (Literal[1, 2], "2", 2),
        (Color, "red", Color.RED),
        (Color, Color.RED, KEPT),
        (Color, "blue", REFUSED),
    ],
    "classes": [
        (DC, _SUB, KEPT),  # an instance of a subclass is an instance
        (DC, {"name": "d"}, DC("d")),
        (DC, {"name": 1}, REFUSED),
        (DC, "d", REFUSED),
        (AC, _AC, KEPT),
        (AC, {"name": "b"}, AC("b")),
        (Point, _POINT, KEPT),
        (Point, {"x": "1", "y": 2}, Point(1, 2)),
        (Point, {"x": 1.5, "y": 2}, REFUSED),
        (Opaque, {}, REFUSED),
        (FakeModel, _MODEL, KEPT),
        (FakeModel, {"name": "n"}, FakeModel("n")),
        (FakeModel, {"nom": "n"}, REFUSED),
        (FakeModel | None, None, None),
        (Path, "/tmp/x", Path("/tmp/x")),
        (Path, 3, REFUSED),
    ],
    "any_and_annotated": [
        (Any, [1.5], KEPT),
        (object, "x", KEPT),
        (Annotated[int, msgspec.Meta(ge=0)], "5", 5),
        (Annotated[int, msgspec.Meta(ge=0)], -1, REFUSED),
        (Callable[[int], int], 3, REFUSED),
    ],
    # Values no JSON store can keep (a SQLite store refuses them at submit), validated alike.
    "unstorable": [
        (Opaque, _OPAQUE, KEPT),
        (Any, _OPAQUE, KEPT),
        (Callable[[int], int], abs, KEPT),
        (Callable[[int], int] | None, abs, KEPT),
        (Opaque, "x", REFUSED),
        (Callable[[int], int], 3, REFUSED),
    ],
}


def echo_flow(hint: Any) -> Flow[..., Any]:
    async def echo(x):  # type: ignore[no-untyped-def]
        return x

    echo.__annotations__ = {"x": hint}
    return flow(echo)


@pytest.mark.parametrize("kind", list(CASES))
async def test_each_kind_of_hint(kind: str) -> None:
    wrong: list[str] = []
    async with Runtime(store="memory://") if kind == "unstorable" else Runtime() as rt:
        for hint, value, expected in CASES[kind]:
            h = await rt.submit(echo_flow(hint), value)
            state = await h.wait()
            if expected is REFUSED:
                outcome_ok = state.is_failed() and isinstance(state.data, ParameterTypeError)
            elif not state.is_completed():
                outcome_ok = False
            else:
                result = await h.result()
                # Kept as it is, or equal with the same types throughout (3 is not 3.0 nor True).
                outcome_ok = result is value if expected is KEPT else repr(result) == repr(expected)
            if not outcome_ok:
                wrong.append(f"{hint!r} given {value!r}: {state.name} {state.message or ''}")
    assert wrong == []


async def test_variadic_parameters_are_checked_each_and_defaults_pass() -> None:
    @flow
    async def spread(a: int, *rest: int, b: int = None, **extra: float) -> Any:  # noqa: RUF013
        return a, rest, b, extra

    async with Runtime() as rt:
        h = await rt.submit(spread, "1", "2", 3, x="0.5")
        assert await h.result() == (1, (2, 3), None, {"x": 0.5})
        await refused(rt, spread, "rest", 1, 2.5)
        await refused(rt, spread, "extra", 1, x="half")
        await refused(rt, spread, "b", 1, b="none")


async def test_an_unresolvable_hint_leaves_only_that_parameter_unchecked() -> None:
    @flow
    async def partly(a: NoSuchType, n: int) -> tuple[Any, int]:  # type: ignore[name-defined]  # noqa: F821
        return a, n

    anything = ["not", "checked"]
    async with Runtime() as rt:
        assert await (await rt.submit(partly, anything, "3")).result() == (anything, 3)
        await refused(rt, partly, "n", anything, 3.5)


# -- the command line ----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_command_line_values_are_validated(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "cli_flows.py"
    source.write_text(
        textwrap.dedent(
            """
            from runtime import flow

            @flow
            def count(n: int, label: str = "x") -> str:
                return f"{label}:{n!r}"
            """
        )
    )
    entrypoint = f"{source}:count"

    def run(*params: str) -> tuple[int, str, str]:
        argv = ["run", entrypoint, "--backend", backend]
        for param in params:
            argv += ["-p", param]
        code = flowactor_main(argv)
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = run("n=3.5")
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(r"\bn: expected int, got 3\.5\b", err), err
    code, out, err = run("n=3")
    assert code == 0 and "result: 'x:3'" in out, (out, err)
    code, out, err = run("n=3", "label=123")  # JSON for an int, the text itself for a str
    assert code == 0 and "result: '123:3'" in out, (out, err)


# -- flow options --------------------------------------------------------------------------------
async def _f(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("option", "value", "error", "message"),
    [
        ("tags", "etl", TypeError, "must be a list of str, got 'etl'"),
        ("tags", ["a", 1], TypeError, "must be a list of str, got ['a', 1]"),
        ("timeout_seconds", "10", TypeError, "must be a number of seconds, got '10'"),
        ("timeout_seconds", True, TypeError, "must be a number of seconds, got True"),
        ("timeout_seconds", -1, ValueError, "must not be negative, got -1"),
        ("timeout_seconds", math.nan, ValueError, "must not be negative, got nan"),
        (
            "result_serializer",
            "yaml",
            ValueError,
            "must be one of 'json', 'msgpack', 'pickle', got 'yaml'",
        ),
        ("retries", "3", TypeError, "must be an int, got '3'"),
        ("retries", True, TypeError, "must be an int, got True"),
        ("retries", 1.5, TypeError, "must be an int, got 1.5"),
        ("retries", -1, ValueError, "must not be negative, got -1"),
        ("retry_delay_seconds", "5", TypeError, "must be a number or a list of numbers, got '5'"),
        (
            "retry_delay_seconds",
            [1, "2"],
            TypeError,
            "must be a number or a list of numbers, got '2'",
        ),
        ("retry_delay_seconds", [1, -2], ValueError, "must not be negative, got -2"),
        ("name", 5, TypeError, "must be a str, got 5"),
        ("version", 1.0, TypeError, "must be a str, got 1.0"),
        ("description", 3, TypeError, "must be a str, got 3"),
        ("flow_run_name", 3, TypeError, "must be a str template or a callable, got 3"),
        ("validate_parameters", "yes", TypeError, "must be True or False, got 'yes'"),
        ("persist_result", "no", TypeError, "must be True, False or None, got 'no'"),
        ("log_prints", 1, TypeError, "must be True, False or None, got 1"),
    ],
)
def test_bad_flow_options_are_clear_errors_at_decoration(
    option: str, value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as decorating:
        flow(**{option: value})(_f)
    with pytest.raises(error) as changing:
        flow(_f).with_options(**{option: value})
    assert str(decorating.value) == str(changing.value) == f"flow option {option}= {message}"


def test_good_flow_options_are_kept() -> None:
    f = flow(
        tags=["etl", "daily"],
        timeout_seconds=10,
        retries=None,
        retry_delay_seconds=[1, 2.5],
        version="1",
        flow_run_name=lambda: "named",
        persist_result=None,
        result_serializer="msgpack",
    )(_f)
    assert (f.tags, f.timeout_seconds, f.retries, f.retry_delay_seconds) == (
        ("etl", "daily"), 10.0, 0, (1.0, 2.5)
    )  # fmt: skip
    assert f.with_options(timeout_seconds=0, tags=()).timeout_seconds is None  # 0: no timeout
    with pytest.raises(TypeError, match="tags="):
        f.with_options(tags="etl")
