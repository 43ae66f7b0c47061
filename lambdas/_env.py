"""The handlers' one way to read their configuration: required, parsed, and loud.

Every value a handler reads from its environment is set by the stack that deploys it
(data_stack/stacks/...), so a missing or malformed one is a deployment mistake. It fails
the invocation with one line naming the variable, instead of falling back to a default
that would silently duplicate (and drift from) data_stack.config.

The bundler (data_stack/constructs/python_function.py) copies this module into each
function that imports it, like the acme_telemetry modules a handler imports.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

T = TypeVar("T")


class SettingError(RuntimeError):
    """A required environment variable is unset, empty or not of its type."""


@overload
def require(name: str, *, env: Mapping[str, str] | None = None) -> str: ...
@overload
def require(name: str, parse: Callable[[str], T], *, env: Mapping[str, str] | None = None) -> T: ...


def require(name: str, parse: Callable[[str], Any] = str, *, env: Mapping[str, str] | None = None) -> Any:
    """os.environ[name] parsed with `parse` (str, int, float, ...), or SettingError."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        raise SettingError(f"environment variable {name} is not set; the stack that deploys this function sets it")
    try:
        return parse(raw)
    except ValueError:
        raise SettingError(f"environment variable {name}={raw!r} is not a valid {getattr(parse, '__name__', 'value')}") from None
