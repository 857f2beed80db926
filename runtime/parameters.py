"""Binding call arguments to a flow's signature and validating them against its type hints.

Validation is lax, in pydantic's sense (see `_validation`): "123" becomes 123 for an int, 3.5
is refused. A parameter whose value already has exactly its hinted type costs no conversion.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
import weakref
from collections.abc import Callable
from typing import Any

import attrs

from ._validation import Validator, describe, validator_for
from .errors import ParameterTypeError

__all__ = [
    "bind_parameters",
    "call_args",
    "parameters_from_text",
    "validate_parameters",
    "validate_value",
]


@attrs.frozen
class _Shape:
    """What we need to know of a function's signature, computed once per function."""

    signature: inspect.Signature
    keywords_only: bool  # fn(**parameters) is a correct call
    # The parameter names when every one is positional-or-keyword without a default: then a
    # call binds by position without inspect (the common case, on every submit).
    plain_names: tuple[str, ...] | None
    # Per parameter with something to check, how; the others pass as they are.
    checks: dict[str, Validator]
    # Defaults, which pass as they are (as in pydantic: `x: int = None` is allowed).
    defaults: dict[str, Any]


# Shapes by id(fn), each with a weak reference that drops the entry when `fn` goes: cheaper
# to look up than a WeakKeyDictionary, which makes a new weak reference on every lookup.
_shapes: dict[int, tuple[weakref.ref[Callable[..., Any]], _Shape]] = {}
_NO_DEFAULT = object()


def _shape(fn: Callable[..., Any]) -> _Shape:
    entry = _shapes.get(id(fn))
    if entry is not None and entry[0]() is fn:
        return entry[1]
    sig = inspect.signature(fn)
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = sig.parameters.values()
    keywords_only = all(p.kind in plain for p in params)
    simple = all(
        p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params
    )
    plain_names = tuple(sig.parameters) if simple else None
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    shape = _Shape(sig, keywords_only, plain_names, _checks(fn, sig), defaults)
    key = id(fn)
    # The entry goes when `fn` does, before its id can be given to another object.
    _shapes[key] = (weakref.ref(fn, lambda _: _shapes.pop(key, None)), shape)
    return shape


def _checks(fn: Callable[..., Any], sig: inspect.Signature) -> dict[str, Validator]:
    checks: dict[str, Validator] = {}
    for name, hint in _hints(fn, sig).items():
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL and validator_for(hint) is not None:
            hint = types.GenericAlias(tuple, (hint, ...))  # *args: int checks each one
        elif kind is inspect.Parameter.VAR_KEYWORD and validator_for(hint) is not None:
            hint = types.GenericAlias(dict, (str, hint))  # **kwargs: int checks each one
        check = validator_for(hint)
        if check is not None:
            checks[name] = check
    return checks


def _hints(fn: Callable[..., Any], sig: inspect.Signature) -> dict[str, Any]:
    """The resolved hint of each parameter; one that cannot be resolved is left out."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # some forward reference cannot be resolved: try them one by one
        hints = {}
        namespace = getattr(inspect.unwrap(fn), "__globals__", {})
        for name, param in sig.parameters.items():
            if param.annotation is param.empty:
                continue
            holder = types.SimpleNamespace(__annotations__={"hint": param.annotation})
            try:
                hints[name] = typing.get_type_hints(holder, namespace, include_extras=True)["hint"]
            except Exception:
                continue
    return {name: hint for name, hint in hints.items() if name in sig.parameters}


def bind_parameters(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Bind a call to `fn`'s signature, defaults applied; `ParameterTypeError` if it cannot bind."""
    shape = _shape(fn)
    names = shape.plain_names
    if names is not None and not kwargs and len(args) == len(names):
        return dict(zip(names, args, strict=True))  # what sig.bind would give, without it
    sig = shape.signature
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise ParameterTypeError(f"cannot call {fn.__qualname__}{sig}: {exc}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


def call_args(
    fn: Callable[..., Any], parameters: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The (args, kwargs) that call `fn` with `parameters` (handles *args and **kwargs)."""
    shape = _shape(fn)
    if shape.keywords_only:
        return (), parameters
    bound = inspect.BoundArguments(shape.signature, dict(parameters))
    return bound.args, bound.kwargs


def validate_value(value: Any, hint: Any) -> Any:
    """`value` validated against `hint` as parameters are; raises (ValueError mostly) if not."""
    check = validator_for(hint)
    return value if check is None else check.validate(value)


def validate_parameters(fn: Callable[..., Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters validated against `fn`'s type hints, converted where lossless.

    Raises `ParameterTypeError` naming every invalid parameter. Parameters without a hint (or
    hinted `Any`, or with a hint that cannot be resolved) and defaults pass unchanged. When
    nothing is converted, the same dict is returned (no copy per run).
    """
    shape = _shape(fn)
    checks = shape.checks
    if not checks:
        return parameters
    defaults = shape.defaults
    validated = parameters  # copied at the first converted value
    problems: list[str] = []
    for name, value in parameters.items():
        check = checks.get(name)
        if check is None or type(value) in check.exact or value is defaults.get(name, _NO_DEFAULT):
            continue  # nothing to check, already of its exact type, or the default
        try:
            converted = check.validate(value)
        except Exception as exc:
            problems.append(f"{name}: {describe(exc, value, check.hint)}")
            continue
        if converted is not value:
            if validated is parameters:
                validated = dict(parameters)
            validated[name] = converted
    if problems:
        raise ParameterTypeError("Flow run received invalid parameters: " + "; ".join(problems))
    return validated


def parameters_from_text(fn: Callable[..., Any], texts: dict[str, str]) -> dict[str, Any]:
    """Parameters given as text (a command line): each is JSON, or else the text itself.

    The text is kept where the parameter's hint takes it and not its JSON value (`123` for a
    str); validation proper happens in the run, like any other parameter's.
    """
    checks = _shape(fn).checks
    parameters: dict[str, Any] = {}
    for name, text in texts.items():
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text  # a bare word is a string
        check = checks.get(name)
        if check is not None and not _takes(check, value) and _takes(check, text):
            value = text
        parameters[name] = value
    return parameters


def _takes(check: Validator, value: Any) -> bool:
    try:
        check.validate(value)
    except Exception:
        return False
    return True
