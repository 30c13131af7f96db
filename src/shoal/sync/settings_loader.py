"""Typed integration settings from a config file and environment variables."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml
from pydantic import BaseModel, ValidationError

from shoal.errors import ConfigError

__all__ = ["load_settings", "yaml_problem"]

M = TypeVar("M", bound=BaseModel)


def load_settings(
    model: type[M],
    *,
    prefix: str,
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> M:
    """Build ``model`` from the file ``{prefix}CONFIG`` (YAML or JSON) and ``{prefix}<FIELD>`` vars.

    Environment variables win over the file. A value that is a JSON array or object is used
    parsed (so ``SHOAL_X_PATHS='["a", "b"]'`` gives a list); any other is used as the string it
    is, which pydantic coerces to the setting's type (so a token of digits stays a string, and
    ``"30"`` becomes 30 for a number). Any problem raises :class:`ConfigError` with a one-line
    message naming the setting.

    Example: ``load_settings(GitSettings, prefix="SHOAL_GIT_")`` reads ``SHOAL_GIT_CONFIG`` and
    ``SHOAL_GIT_PATHS``.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or environ.get(f"{prefix}CONFIG")
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            message = f"cannot read settings file {path}: {exc}"
            raise ConfigError(message) from None
        except yaml.YAMLError as exc:  # not quoted: the lines may hold secrets
            message = f"settings file {path} is not valid YAML: {yaml_problem(exc)}"
            raise ConfigError(message) from None
        if loaded is not None and not isinstance(loaded, dict):
            message = f"settings file {path} must hold a mapping of setting names to values"
            raise ConfigError(message)
        values.update(loaded or {})
    for name in model.model_fields:
        raw = environ.get(f"{prefix}{name.upper()}")
        if raw is not None:
            values[name] = raw
            if raw.lstrip().startswith(("[", "{")):
                with contextlib.suppress(orjson.JSONDecodeError):
                    values[name] = orjson.loads(raw)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = f"setting {prefix}{where.upper()}: {error['msg']}"
        raise ConfigError(message) from None


def yaml_problem(error: yaml.YAMLError) -> str:
    """What is wrong with a YAML text, on one line, without the excerpt of it that PyYAML
    quotes (the lines of a settings file may hold secrets)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    return type(error).__name__
