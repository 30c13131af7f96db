"""Numbers and flags read from environment variables, at the edge: unset or empty means "not
given", anything unreadable is a one-line :class:`~shoal.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeVar

from shoal.errors import ConfigError

__all__ = ["flag", "given", "number", "whole"]

V = TypeVar("V")
D = TypeVar("D")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def number(environ: Mapping[str, str], name: str) -> float | None:
    """The finite number ``name`` holds, or None when it is unset or empty."""
    raw = environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        message = f"{name} must be a number, got {raw!r}"
        raise ConfigError(message)
    return value


def whole(environ: Mapping[str, str], name: str) -> int | None:
    """The whole number ``name`` holds (``8000`` or ``8e3``, not ``0.5``), or None."""
    value = number(environ, name)
    if value is None:
        return None
    if value != int(value):
        message = f"{name} must be a whole number, got {environ[name]!r}"
        raise ConfigError(message)
    return int(value)


def flag(environ: Mapping[str, str], name: str) -> bool | None:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``), or None."""
    raw = environ.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    message = f"{name} must be true or false, got {raw!r}"
    raise ConfigError(message)


def given(value: V | None, default: D) -> V | D:
    """``value`` if the variable was set (0 and false included), else ``default``."""
    return default if value is None else value
