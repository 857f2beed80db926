"""Finding a flow from its entrypoint: `pkg.module:flow_name` or `path/to/file.py:flow_name`."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from .flows import Flow

__all__ = ["load_flow_from_entrypoint"]


def load_flow_from_entrypoint(entrypoint: str) -> Flow[..., Any]:
    """Import the module (or file) and return the flow named after the colon.

    Raises ValueError for a malformed entrypoint, ImportError / FileNotFoundError when the
    module cannot be found, and TypeError when the name is not a flow.
    """
    module_part, sep, qualname = entrypoint.rpartition(":")
    if not sep or not module_part or not qualname:
        raise ValueError(
            f"bad entrypoint {entrypoint!r}: expected 'package.module:flow' or 'file.py:flow'"
        )
    module = _load_module(module_part)
    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(f"{module_part!r} has no attribute {qualname!r}") from None
    if not isinstance(obj, Flow):
        raise TypeError(
            f"{entrypoint!r} is a {type(obj).__name__}, not a flow (decorate it with @flow)"
        )
    return obj


def _load_module(spec: str) -> ModuleType:
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = Path(spec).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"no such flow file: {spec}")
        name = f"flowactor_entrypoint_{path.stem}_{abs(hash(path)):x}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import {spec}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        raise ImportError(f"cannot import module {spec!r}: {exc}") from exc
