"""What the integrations configured by one YAML file (``http``, ``sql``) share.

Such an integration names its file in an environment variable (``SHOAL_HTTP_CONFIG``,
``SHOAL_SQL_CONFIG``); its configuration class derives from :class:`YamlConfig` and so gets
:meth:`~YamlConfig.from_env`, :meth:`~YamlConfig.from_yaml` and :meth:`~YamlConfig.parse`:
read the file, expand ``${NAME}`` references from the environment (:func:`expand_env`) and
validate it with pydantic. Every mistake -- a missing file, bad YAML, an unset variable, a
wrong type -- is one :class:`~shoal.errors.ConfigError` of one line naming the offending key.

``${NAME}`` expansion touches only string *values* of the parsed YAML (never keys, never the
YAML text), so a secret containing YAML syntax cannot change the structure of the
configuration. ``$$`` is a literal ``$``. A variable that is not set is a ConfigError naming
the variable and where it is used -- never an empty string that would, say, send a request
without a token or connect without a password.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Self, TypeAlias

import yaml
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

from shoal.errors import ConfigError
from shoal.sync.settings_loader import yaml_problem

__all__ = ["ConfigModel", "KindName", "YamlConfig", "expand_env"]

KindName: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
"""A kind's name: safe inside the jq string literals of a default mapping template."""

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
    """``value`` (parsed YAML) with ``${NAME}`` replaced in every string, recursively.

    ``where`` names ``value`` in errors; it is extended with the keys and indexes walked
    through, so an unset variable is reported as, e.g., ``api.yaml.auth.token``.
    """
    if isinstance(value, str):
        return _expand_text(value, environ, where)
    if isinstance(value, dict):
        return {key: expand_env(item, environ, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item, environ, f"{where}[{index}]") for index, item in enumerate(value)]
    return value


class ConfigModel(BaseModel):
    """A part of a configuration file: camelCase keys, frozen, unknown keys are errors.

    Unknown keys are errors so that a typo cannot silently disable, say, authentication.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class YamlConfig(ConfigModel):
    """The whole configuration file of an integration.

    Subclasses set :attr:`config_name` (``"http config"``: how errors name the file) and
    :attr:`config_env` (the environment variable holding the file's path).
    """

    config_name: ClassVar[str]
    config_env: ClassVar[str]

    @classmethod
    def parse(cls, data: Any, where: str | None = None) -> Self:
        """Validate already-parsed (and already-expanded) configuration data.

        A :class:`~pydantic.ValidationError` becomes one ConfigError starting with ``where``
        (default :attr:`config_name`): ``"<where>: kinds.a.path: Field required; ..."``.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)
            )
            where = cls.config_name if where is None else where
            raise ConfigError(f"{where}: {problems}") from None

    @classmethod
    def from_yaml(cls, path: Path, environ: Mapping[str, str] | None = None) -> Self:
        """Read, expand (``${NAME}`` from ``environ``, default ``os.environ``) and validate."""
        env = os.environ if environ is None else environ
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the {cls.config_name} {path}: {exc}") from None
        except yaml.YAMLError as exc:
            message = f"the {cls.config_name} {path} is not valid YAML: {yaml_problem(exc)}"
            raise ConfigError(message) from None
        return cls.parse(expand_env(data, env, str(path)), str(path))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The configuration in the file that :attr:`config_env` of ``environ`` names."""
        env = os.environ if environ is None else environ
        path = env.get(cls.config_env, "").strip()
        if not path:
            message = f"{cls.config_env} is not set: give the path of the {cls.config_name} YAML"
            raise ConfigError(message)
        return cls.from_yaml(Path(path).expanduser(), env)
