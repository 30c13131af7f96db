"""``${NAME}`` substitution in configuration values (pure functions).

Only string *values* of the parsed YAML are expanded (never keys, never the YAML text), so a
secret containing YAML syntax cannot change the structure of the configuration. ``$$`` is a
literal ``$``. A variable that is not set is a :class:`~shoal.errors.ConfigError` naming the
variable and where it is used -- never an empty string that would send a request without a
token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from shoal.errors import ConfigError

__all__ = ["expand_env"]

_REFERENCE: Final = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|(\$))")


def _expand_text(text: str, environ: Mapping[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(2):
            return "$"
        name = match.group(1)
        if name not in environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return environ[name]

    return _REFERENCE.sub(replace, text)


def expand_env(value: Any, environ: Mapping[str, str], where: str = "config") -> Any:
    """``value`` (parsed YAML) with ``${NAME}`` replaced in every string, recursively."""
    if isinstance(value, str):
        return _expand_text(value, environ, where)
    if isinstance(value, dict):
        return {key: expand_env(item, environ, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item, environ, f"{where}[{index}]") for index, item in enumerate(value)]
    return value
