"""Lax validation of one value against a type hint, in the sense of pydantic's lax mode.

Lossless conversions are made ("123" -> 123, 3.0 -> 3, "false" -> False, a dict -> the hinted
dataclass, attrs class or msgspec Struct, "2024-01-01" -> a date); lossy or meaningless ones
are refused (3.5 or True for an int, "maybe" for a bool, an int for a date). An instance of a
hinted class is accepted as it is. msgspec's `convert(strict=False)` does the work for the
types it knows; its conversions invert the store's JSON encoding (bytes as base64, dates as
ISO strings, objects as dicts), so a value read back from a store validates to what was
submitted. A class msgspec does not know takes only its instances, except a pydantic-like
model (a class with `model_validate`), which also takes a mapping, and a path, which also takes
a str. A hint that neither msgspec nor `isinstance` can check lets every value through.
"""

from __future__ import annotations

import datetime
import reprlib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

import attrs
import msgspec

__all__ = ["Validator", "describe", "validator_for"]

_Convert = Callable[[Any], Any]


@attrs.frozen
class Validator:
    """How values are checked against one hint, worked out once per hint."""

    hint: Any
    # Types of values accepted as they are without calling msgspec (the hot path).
    exact: frozenset[type]
    # Classes whose instances (subclasses included) are accepted as they are.
    instance_of: tuple[type, ...]
    convert: _Convert

    def validate(self, value: Any) -> Any:
        """`value`, converted where lossless; raises (a `ValueError` mostly) if refused."""
        if type(value) in self.exact:
            return value
        if self.instance_of and isinstance(value, self.instance_of):
            return value
        return self.convert(value)


# Classes whose subclass instances msgspec rightly refuses or converts: a bool is no int, a
# datetime is no date; an IntEnum member given for an int becomes that int.
_NOT_BY_ISINSTANCE = frozenset({int, float, datetime.date})
_UNION_TYPES = (typing.Union, types.UnionType)


def validator_for(hint: Any) -> Validator | None:
    """The validator of `hint`, or None when every value passes (Any, object, no check)."""
    if hint is Any or hint is object:
        return None
    if typing.get_origin(hint) in _UNION_TYPES:
        members = typing.get_args(hint)
        if Any in members or object in members:
            return None
        plain = tuple(m for m in members if _plain_class(m))
    else:
        members = (hint,)
        plain = (hint,) if _plain_class(hint) else ()
    exact = frozenset(plain)
    instance_of = tuple(c for c in plain if c not in _NOT_BY_ISINSTANCE and c is not type(None))
    try:
        msgspec.inspect.type_info(hint)
    except TypeError:  # a type msgspec does not support (or a union of such types)
        if len(members) > 1:
            return Validator(hint, exact, instance_of, _smart_union(hint, members))
        origin = typing.get_origin(hint) or hint
        if not isinstance(origin, type):
            return None  # nothing to check a value against
        return Validator(hint, frozenset(), (origin,), lambda value: _dec_hook(hint, value))
    return Validator(hint, exact, instance_of, _by_msgspec(hint))


def _plain_class(hint: Any) -> bool:
    """A class (not a parametrized generic such as list[int]): its instances can be kept."""
    return isinstance(hint, type) and not isinstance(hint, types.GenericAlias)


def _by_msgspec(hint: Any) -> _Convert:
    def convert(value: Any) -> Any:
        return msgspec.convert(value, hint, strict=False, dec_hook=_dec_hook)

    return convert


def _dec_hook(hint: Any, value: Any) -> Any:
    """msgspec asks this for a class it does not know (even for that class's instances)."""
    cls = typing.get_origin(hint) or hint  # Callable[[int], int]: a callable is all we check
    if not isinstance(cls, type) or isinstance(value, cls):
        return value
    model_validate = getattr(cls, "model_validate", None)
    if callable(model_validate) and isinstance(value, Mapping):
        return model_validate(value)  # a pydantic-like model validates a mapping itself
    if issubclass(cls, PurePath) and isinstance(value, str):
        return cls(value)
    raise ValueError(f"Expected `{cls.__qualname__}`, got `{type(value).__qualname__}`")


def _smart_union(hint: Any, members: tuple[Any, ...]) -> _Convert:
    """A union msgspec cannot take as a whole: the first member that takes the value as it is
    (strictly), else the first that takes it laxly, in the order written."""
    checks = [v for v in map(validator_for, members) if v is not None]
    strict = [_strict(m) for m in members]

    def convert(value: Any) -> Any:
        for attempt in (*strict, *(c.validate for c in checks)):
            if attempt is None:
                continue
            try:
                return attempt(value)
            except (ValueError, TypeError):
                continue
        raise ValueError(f"Expected `{_type_repr(hint)}`, got `{type(value).__qualname__}`")

    return convert


def _strict(member: Any) -> _Convert | None:
    try:
        msgspec.inspect.type_info(member)
    except TypeError:
        return None

    def convert(value: Any) -> Any:
        return msgspec.convert(value, member, strict=True, dec_hook=_dec_hook)

    return convert


def describe(exc: Exception, value: Any, hint: Any) -> str:
    """One line saying why `value` is not a valid `hint`."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return f"expected {_type_repr(hint)}, got {reprlib.repr(value)} ({detail})"


def _type_repr(hint: Any) -> str:
    if _plain_class(hint):
        return str(hint.__qualname__)
    return repr(hint).replace("typing.", "")
