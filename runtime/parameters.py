"""Binding call arguments to a flow's signature and validating them against its type hints."""

from __future__ import annotations

import inspect
import typing
import weakref
from collections.abc import Callable
from typing import Any

import attrs
import cattrs

from .errors import ParameterTypeError

__all__ = ["bind_parameters", "call_args", "structure", "validate_parameters"]

_converter = cattrs.Converter()


@attrs.frozen
class _Shape:
    """What we need to know of a function's signature, computed once per function."""

    signature: inspect.Signature
    hints: dict[str, Any] | None  # None when the hints cannot be resolved
    keywords_only: bool  # fn(**parameters) is a correct call
    # The parameter names when every one is positional-or-keyword without a default: then a
    # call binds by position without inspect (the common case, on every submit).
    plain_names: tuple[str, ...] | None
    # Per parameter, the exact type a value may already have to need no conversion.
    exact: dict[str, type]


_shapes: weakref.WeakKeyDictionary[Callable[..., Any], _Shape] = weakref.WeakKeyDictionary()


def _shape(fn: Callable[..., Any]) -> _Shape:
    shape = _shapes.get(fn)
    if shape is None:
        sig = inspect.signature(fn)
        try:
            hints: dict[str, Any] | None = typing.get_type_hints(fn)
        except Exception:  # unresolvable forward references: nothing to validate against
            hints = None
        plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        params = sig.parameters.values()
        keywords_only = all(p.kind in plain for p in params)
        simple = all(
            p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is p.empty
            for p in params
        )
        exact = {
            name: hint
            for name, hint in (hints or {}).items()
            if hint in _SCALARS and name in sig.parameters
        }
        plain_names = tuple(sig.parameters) if simple else None
        shape = _shapes[fn] = _Shape(sig, hints, keywords_only, plain_names, exact)
    return shape


# Hints whose values cattrs would return unchanged when they already have exactly that type.
_SCALARS = frozenset({int, float, str, bool, bytes})


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


def structure(value: Any, hint: Any) -> Any:
    """`value` converted to the type `hint` with the converter parameters are validated with."""
    return _converter.structure(value, hint)


def validate_parameters(fn: Callable[..., Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Coerce each parameter to its type hint with cattrs ("42" -> 42 for an int).

    Raises `ParameterTypeError` naming every invalid parameter. Parameters without a hint,
    hinted `Any`, or whose hint cattrs cannot structure are passed through unchanged.
    """
    shape = _shape(fn)
    hints, sig = shape.hints, shape.signature
    if not hints:
        return dict(parameters)
    exact = shape.exact
    validated: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in parameters.items():
        if type(value) is exact.get(name):
            validated[name] = value  # already of its (scalar) type: nothing to convert
            continue
        hint = hints.get(name)
        kind = sig.parameters[name].kind if name in sig.parameters else None
        if hint is None or hint is Any or kind in _VARIADIC:
            validated[name] = value
            continue
        try:
            validated[name] = _converter.structure(value, hint)
        except cattrs.errors.StructureHandlerNotFoundError:
            validated[name] = value
        except Exception as exc:
            problems.append(f" - {name}: {_describe(exc, value, hint)}")
    if problems:
        raise ParameterTypeError("Flow run received invalid parameters:\n" + "\n".join(problems))
    return validated


_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _describe(exc: Exception, value: Any, hint: Any) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        inner = "; ".join(str(e) for e in exc.exceptions)
        detail = inner or str(exc)
    else:
        detail = str(exc)
    hint_name = getattr(hint, "__name__", repr(hint))
    return f"expected {hint_name}, got {value!r} ({detail})"
