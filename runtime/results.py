"""Encoding what a store keeps: flow parameters, persisted results and recorded exceptions.

Parameters are encoded with msgspec JSON (pydantic-like models by their `model_dump`, paths
as str). A flow with `persist_result=True` has its return value encoded with its
`result_serializer`: "json" (the default) or "msgpack" with msgspec, or "pickle" only when the
flow asks for it (decoding pickle runs code: only read stores you trust). JSON and msgpack
keep JSON's types: a tuple comes back as a list, a datetime as a string unless the reader
knows better.
"""

from __future__ import annotations

import builtins
import os
import pickle
from typing import Any, Final, Literal

import attrs
import msgspec

from .errors import ParameterEncodeError, ResultEncodeError, StoredError
from .handle import FlowRunHandle

__all__ = [
    "RESULT_SERIALIZERS",
    "PersistedResult",
    "ResultSerializer",
    "decode_parameters",
    "decode_result",
    "encode_parameters",
    "encode_result",
    "error_info",
]

ResultSerializer = Literal["json", "msgpack", "pickle"]
RESULT_SERIALIZERS: Final = ("json", "msgpack", "pickle")

_json = msgspec.json.Encoder()
_msgpack = msgspec.msgpack.Encoder()
_json_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
_msgpack_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder()
_params_decoder = msgspec.json.Decoder(dict[str, Any])


@attrs.frozen(eq=False)
class PersistedResult:
    """A flow's return value with its encoded form: the `data` the engine proposes in Completed.

    A store keeps `payload` (tagged with `serializer`) and puts the live `value` in the state it
    returns, so the process that ran the flow sees its own object, and a new process reading the
    store gets the decoded value.
    """

    value: Any
    serializer: str
    payload: bytes


def encode_result(value: Any, serializer: str) -> PersistedResult:
    """Encode a return value; `ResultEncodeError` naming its type if the serializer cannot."""
    try:
        if serializer == "json":
            payload = _json.encode(value)
        elif serializer == "msgpack":
            payload = _msgpack.encode(value)
        elif serializer == "pickle":
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        else:
            raise ValueError(f"unknown result serializer {serializer!r}")
    except Exception as exc:
        raise ResultEncodeError(
            f"The flow's return value of type {_type_name(value)!r} cannot be persisted "
            f"with the {serializer!r} result serializer: {exc}"
        ) from exc
    return PersistedResult(value, serializer, payload)


def decode_result(serializer: str, payload: bytes) -> Any:
    """The value `encode_result` encoded."""
    if serializer == "json":
        return _json_decoder.decode(payload)
    if serializer == "msgpack":
        return _msgpack_decoder.decode(payload)
    if serializer == "pickle":
        return pickle.loads(payload)
    raise ValueError(f"unknown result serializer {serializer!r}")


def _encode_parameter(value: Any) -> Any:
    """What msgspec cannot encode: a run handle, a pydantic-like model (duck-typed), a path."""
    if isinstance(value, FlowRunHandle):
        return {"upstream_flow_run_id": str(value.id)}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise NotImplementedError(f"Encoding objects of type {_type_name(value)} is unsupported")


_params_json = msgspec.json.Encoder(enc_hook=_encode_parameter)


def encode_parameters(flow_name: str, parameters: dict[str, Any]) -> bytes:
    """Parameters as JSON; `ParameterEncodeError` naming the first one that cannot be encoded.

    An upstream run's handle is stored as `{"upstream_flow_run_id": "<id>"}`. A pydantic model
    is stored as its `model_dump(mode="json")`, a path as its str: validating the stored value
    against the parameter's hint gives the model or path back.
    """
    try:
        return _params_json.encode(parameters)
    except Exception as exc:
        error: Exception = exc
    for name, value in parameters.items():
        try:
            _params_json.encode(value)
        except Exception as exc:
            type_name = _type_name(value)
            raise ParameterEncodeError(
                f"Parameter {name!r} of flow {flow_name!r} cannot be stored: a value of type "
                f"{type_name!r} cannot be encoded as JSON ({exc}). No run was created.",
                parameter=name,
                type_name=type_name,
            ) from exc
    raise ParameterEncodeError(  # e.g. a parameter name that is not a string
        f"The parameters of flow {flow_name!r} cannot be stored: {error}. No run was created.",
        parameter="",
        type_name="dict",
    ) from error


def decode_parameters(blob: bytes) -> dict[str, Any]:
    return _params_decoder.decode(blob)


def error_info(error: BaseException) -> tuple[str, str]:
    """(type name, message) of an exception, as a store records it."""
    if isinstance(error, StoredError):
        return error.type_name, error.message
    try:
        message = str(error)
    except Exception:
        message = f"<unprintable {type(error).__name__}>"
    return _type_name(error), message


def _type_name(value: Any) -> str:
    cls = type(value)
    if cls.__module__ == builtins.__name__:
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
