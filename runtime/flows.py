"""The `flow` decorator and `Flow`: a function plus the options its runs follow."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

import attrs

from .parameters import validate_parameters
from .results import RESULT_SERIALIZERS, ResultSerializer

if TYPE_CHECKING:
    from .handle import FlowRunHandle
    from .models import FlowRun
    from .states import State

__all__ = ["Flow", "Hook", "flow", "unmapped"]

P = ParamSpec("P")
R = TypeVar("R")

Hook = Callable[["Flow[..., Any]", "FlowRun", "State"], Any]
"""A state hook: `hook(flow, flow_run, state)`, sync or async."""

HOOK_KINDS = ("on_running", "on_completion", "on_failure", "on_cancellation", "on_crashed")


_BAD_NAME_CHARACTERS = "/%&><"
_RESERVED_PARAMETERS = frozenset({"return_state", "wait_for"})


def _hooks(value: Iterable[Hook] | None) -> tuple[Hook, ...]:
    if value is None:
        return ()
    if callable(value) or isinstance(value, str | bytes):
        raise TypeError("hooks must be given as a list of callables")
    hooks = tuple(value)
    for hook in hooks:
        if not callable(hook):
            raise TypeError(f"hooks must be callables, got {type(hook).__name__}: {hook!r}")
    return hooks


def _bad(option: str, expected: str, value: object) -> TypeError:
    return TypeError(f"flow option {option}= must be {expected}, got {value!r}")


def _seconds(option: str, value: object, expected: str = "a number of seconds") -> float:
    """An int or float (not a bool, not a str), not negative, not NaN."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _bad(option, expected, value)
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"flow option {option}= must not be negative, got {value!r}")
    return float(value)


def _delays(value: object) -> float | tuple[float, ...]:
    if value is None:
        return 0.0
    expected = "a number or a list of numbers"
    if isinstance(value, list | tuple):
        return tuple(_seconds("retry_delay_seconds", v, expected) for v in value)
    return _seconds("retry_delay_seconds", value, expected)


def _retries(value: object) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad("retries", "an int", value)
    if value < 0:
        raise ValueError(f"flow option retries= must not be negative, got {value!r}")
    return value


def _timeout(value: object) -> float | None:
    if value is None:
        return None
    seconds = _seconds("timeout_seconds", value)
    return seconds or None  # as in Prefect: 0 means no timeout


def _tags(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise _bad("tags", "a list of str", value)
    tags = tuple(value)
    for tag in tags:
        if not isinstance(tag, str):
            raise _bad("tags", "a list of str", value)
    return tags


def _serializer(value: object) -> ResultSerializer:
    if value is None:
        return "json"
    if value not in RESULT_SERIALIZERS:
        choices = ", ".join(repr(s) for s in RESULT_SERIALIZERS)
        raise ValueError(f"flow option result_serializer= must be one of {choices}, got {value!r}")
    return value


def _instance_of(expected: str, *types: type) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator: the value is an instance of one of `types`."""

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, types):
            raise _bad(attribute.name, expected, value)

    return check


def _run_name(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, str) and not callable(value):
        raise _bad(attribute.name, "a str template or a callable", value)


_optional_str = _instance_of("a str", str, type(None))
_optional_bool = _instance_of("True, False or None", bool, type(None))


_HOOK_FIELDS = {
    kind: f"{kind}_hooks"
    for kind in ("on_running", "on_completion", "on_failure", "on_cancellation", "on_crashed")
}


@attrs.define(eq=False, repr=False)
class Flow(Generic[P, R]):
    """A decorated function: calling it runs a flow run and returns its result.

    Async flows return a coroutine to await; sync flows run to completion (in a worker thread
    of the ambient or default runtime). `return_state=True` returns the final `State`.
    """

    fn: Callable[P, R]
    name: str = attrs.field(default=None, validator=_optional_str)
    version: str | None = attrs.field(default=None, validator=_optional_str)
    flow_run_name: str | Callable[[], str] | None = attrs.field(default=None, validator=_run_name)
    retries: int = attrs.field(default=0, converter=_retries)
    retry_delay_seconds: float | tuple[float, ...] = attrs.field(default=0.0, converter=_delays)
    timeout_seconds: float | None = attrs.field(default=None, converter=_timeout)
    validate_parameters: bool = attrs.field(
        default=True, validator=_instance_of("True or False", bool)
    )
    persist_result: bool | None = attrs.field(default=None, validator=_optional_bool)
    result_serializer: ResultSerializer = attrs.field(default="json", converter=_serializer)
    log_prints: bool | None = attrs.field(default=None, validator=_optional_bool)
    description: str | None = attrs.field(default=None, validator=_optional_str)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    on_running_hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=_hooks, alias="on_running"
    )
    on_completion_hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=_hooks, alias="on_completion"
    )
    on_failure_hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=_hooks, alias="on_failure"
    )
    on_cancellation_hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=_hooks, alias="on_cancellation"
    )
    on_crashed_hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=_hooks, alias="on_crashed"
    )
    # (isasync, isgenerator, entrypoint) of `fn`, worked out once: every run asks for them.
    _kind: tuple[bool, bool, str] = attrs.field(init=False, default=(False, False, ""))

    def __attrs_post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"a flow needs a function, got {type(self.fn).__name__}")
        if self.name is None:
            fn_name = getattr(self.fn, "__name__", type(self.fn).__name__)
            self.name = "unknown-lambda" if fn_name == "<lambda>" else fn_name.replace("_", "-")
        bad = set(self.name) & set(_BAD_NAME_CHARACTERS)
        if bad:
            raise ValueError(f"flow name {self.name!r} contains forbidden characters: {bad}")
        reserved = _RESERVED_PARAMETERS & set(inspect.signature(self.fn).parameters)
        if reserved:
            raise ValueError(
                f"{', '.join(sorted(reserved))} cannot be a flow parameter: flow calls use "
                "that keyword themselves"
            )
        if not self.description:
            self.description = inspect.getdoc(self.fn)
        fn: Any = self.fn
        self._kind = (
            inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn),
            inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn),
            f"{getattr(fn, '__module__', None)}:{getattr(fn, '__qualname__', repr(fn))}",
        )

    # -- what kind of function -------------------------------------------------------------
    @property
    def isasync(self) -> bool:
        """True for coroutine functions and async generator functions."""
        return self._kind[0]

    @property
    def isgenerator(self) -> bool:
        """True for generator functions of either kind."""
        return self._kind[1]

    @property
    def entrypoint(self) -> str:
        """`module:qualname`, how a new process finds this flow again."""
        return self._kind[2]

    # -- options ------------------------------------------------------------------------
    def with_options(self, **options: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed (hooks replace, they do not append)."""
        unknown = set(options) - {f.alias for f in attrs.fields(Flow) if f.init}
        if unknown:
            raise TypeError(f"unknown flow option(s): {', '.join(sorted(unknown))}")
        if self.persist_result is None:
            options = _serializer_implies_persistence(options)
        return attrs.evolve(self, **options)

    def validate_parameters_for(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Parameters coerced to the function's type hints; `ParameterTypeError` if invalid."""
        return validate_parameters(self.fn, parameters)

    def hooks_for(self, kind: str) -> tuple[Hook, ...]:
        """The hooks of one kind (`on_failure`, ...), in the order they run."""
        hooks: tuple[Hook, ...] = getattr(self, _HOOK_FIELDS[kind])
        return hooks

    # Hook decorators: `@my_flow.on_failure` appends the function and returns it unchanged.
    def _add_hook(self, kind: str, fn: Hook) -> Hook:
        setattr(self, f"{kind}_hooks", (*self.hooks_for(kind), *_hooks([fn])))
        return fn

    def on_running(self, fn: Hook) -> Hook:
        """Decorator: run `fn(flow, flow_run, state)` each time a run of this flow starts."""
        return self._add_hook("on_running", fn)

    def on_completion(self, fn: Hook) -> Hook:
        """Decorator: run `fn(flow, flow_run, state)` when a run completes."""
        return self._add_hook("on_completion", fn)

    def on_failure(self, fn: Hook) -> Hook:
        """Decorator: run `fn(flow, flow_run, state)` when a run fails (after its last retry)."""
        return self._add_hook("on_failure", fn)

    def on_cancellation(self, fn: Hook) -> Hook:
        """Decorator: run `fn(flow, flow_run, state)` when a run is being cancelled."""
        return self._add_hook("on_cancellation", fn)

    def on_crashed(self, fn: Hook) -> Hook:
        """Decorator: run `fn(flow, flow_run, state)` when a run crashes."""
        return self._add_hook("on_crashed", fn)

    # -- calling ----------------------------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow and return its result (a coroutine to await for async flows)."""
        if _caller is None:  # pragma: no cover - the package installs it on import
            raise RuntimeError("the flowactor runtime is not initialised")
        result: R = _caller(self, args, kwargs)
        return result

    def map(self, *args: Any, **kwargs: Any) -> Awaitable[list[FlowRunHandle]]:
        """Submit one run per element of the iterable arguments, as Prefect's `Task.map`.

        Iterable arguments (not str, bytes or mappings) are zipped, and must have the same
        length; other arguments, and any wrapped in `unmapped(...)`, go to every run as they
        are. Await it (on the ambient runtime) for the runs' handles, in order.
        """
        if _mapper is None:  # pragma: no cover - the package installs it on import
            raise RuntimeError("the flowactor runtime is not initialised")
        handles: Awaitable[list[FlowRunHandle]] = _mapper(self, args, kwargs)
        return handles

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r}, fn={self.fn.__qualname__})"


def _serializer_implies_persistence(options: dict[str, Any]) -> dict[str, Any]:
    """Asking for a `result_serializer` means persisting results, unless persist_result says no."""
    if options.get("result_serializer") is not None and options.get("persist_result") is None:
        return {**options, "persist_result": True}
    return options


# What calling (and mapping) a flow does: run it (runtime/_call.py). The run core sits above
# this module, so it installs itself here when the package is imported, rather than this
# module importing it.
_Call = Callable[["Flow[..., Any]", tuple[Any, ...], dict[str, Any]], Any]
_caller: _Call | None = None
_mapper: _Call | None = None


def install_caller(caller: _Call, mapper: _Call) -> None:
    """Make `caller(flow, args, kwargs)` what calling a flow does, and `mapper` what
    `flow.map` does (done once, by the runtime package)."""
    global _caller, _mapper
    _caller, _mapper = caller, mapper


@attrs.frozen
class unmapped:
    """An argument of `Flow.map` given as it is to every run (not iterated)."""

    value: Any


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = None,
    version: str | None = None,
    flow_run_name: str | Callable[[], str] | None = None,
    retries: int | None = None,
    retry_delay_seconds: float | Sequence[float] = 0.0,
    timeout_seconds: float | None = None,
    validate_parameters: bool = True,
    persist_result: bool | None = None,
    result_serializer: ResultSerializer = "json",
    log_prints: bool | None = None,
    description: str | None = None,
    tags: Iterable[str] = (),
    on_running: Iterable[Hook] | None = None,
    on_completion: Iterable[Hook] | None = None,
    on_failure: Iterable[Hook] | None = None,
    on_cancellation: Iterable[Hook] | None = None,
    on_crashed: Iterable[Hook] | None = None,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Make a function a flow: `@flow` or `@flow(retries=2, timeout_seconds=5, ...)`.

    Giving `result_serializer` turns `persist_result` on unless it is set to False.
    """
    options = _serializer_implies_persistence(options)
    if fn is not None:
        return Flow(fn, **options)

    def decorate(f: Callable[P, R]) -> Flow[P, R]:
        return Flow(f, **options)

    return decorate
