"""What the commands share: `-p KEY=VALUE` parameters and the help for a flow's TARGET."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["TARGET_HELP", "BadInput", "param_option"]

F = TypeVar("F", bound=Callable[..., Any])

TARGET_HELP = "TARGET is 'path/to/file.py:flow' or 'package.module:flow'."


class BadInput(click.ClickException):
    """Input the command cannot work with: one line on stderr, exit status 2."""

    exit_code = 2


def _parse(text: str) -> tuple[str, str]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"expected KEY=VALUE, got {text!r}")
    return key, raw  # read as JSON or text once the flow's type hints are known


def _params(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    return dict(_parse(text) for text in values)


def param_option() -> Callable[[F], F]:
    """The `-p/--param KEY=VALUE` option (repeatable): a `params` dict of texts for the command.

    The texts become values with `runtime.parameters.parameters_from_text` once the flow is
    loaded: JSON, or else the text (the text too where the parameter's hint takes it).
    """
    return click.option(
        "-p",
        "--param",
        "params",
        multiple=True,
        callback=_params,
        metavar="KEY=VALUE",
        help="A flow parameter; VALUE is JSON, or else a string, validated against the "
        "flow's type hints. Repeatable.",
    )
