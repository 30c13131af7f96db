"""The configuration of the sql integration: one YAML file, validated with pydantic.

``SHOAL_SQL_CONFIG`` holds the path of the file; :meth:`SqlConfig.from_env` reads it, expands
``${NAME}`` references from the environment (:mod:`.envsubst`: keep passwords out of the
file) and validates it::

    url: postgresql://catalog:${DB_PASSWORD}@db.internal/inventory
    pageSize: 1000                      # rows per batch, default 1000
    kinds:
      service:
        query: SELECT id, name, owner FROM services WHERE retired = :retired
        params: {retired: false}        # bound parameters (:name) of the query
        pageSize: 500                   # this kind's batch size

Keys are camelCase; unknown keys, a URL SQLAlchemy cannot parse or has no asyncio driver for,
and a missing file are :class:`~shoal.errors.ConfigError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, TypeAlias

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from shoal.errors import ConfigError
from shoal.integrations.sql.envsubst import expand_env

__all__ = ["ASYNC_DRIVERS", "CONFIG_ENV", "KindQuery", "SqlConfig", "async_url"]

CONFIG_ENV: Final = "SHOAL_SQL_CONFIG"
ASYNC_DRIVERS: Final = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "mariadb": "mariadb+aiomysql",
}
"""The asyncio driver used for a URL that names none (``postgresql://`` -> asyncpg)."""

KindName: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


def async_url(url: str) -> URL:
    """``url`` as a SQLAlchemy URL with an asyncio driver; :class:`ConfigError` if impossible."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("sql config: url is not a SQLAlchemy database URL") from None
    if "+" not in parsed.drivername and parsed.drivername in ASYNC_DRIVERS:
        parsed = parsed.set(drivername=ASYNC_DRIVERS[parsed.drivername])
    shown = parsed.render_as_string(hide_password=True)
    try:
        dialect = parsed.get_dialect()
        dialect.import_dbapi()  # the driver package itself, e.g. aiomysql
        is_async = dialect.is_async
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"sql config: no driver for {shown}: {exc}") from None
    if not is_async:
        message = (
            f"sql config: {parsed.drivername} is not an asyncio driver; "
            "use e.g. sqlite+aiosqlite or postgresql+asyncpg"
        )
        raise ConfigError(message)
    return parsed


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class KindQuery(_Model):
    """The query whose rows are the items of one kind."""

    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    params: dict[str, Any] = Field(default_factory=dict)
    page_size: PositiveInt | None = None


class SqlConfig(_Model):
    """A database and the kinds its queries serve."""

    url: str
    page_size: PositiveInt = 1000
    kinds: Annotated[dict[KindName, KindQuery], Field(min_length=1)]

    @field_validator("url")
    @classmethod
    def _has_async_driver(cls, url: str) -> str:
        async_url(url)
        return url

    @property
    def engine_url(self) -> URL:
        """:attr:`url` with its asyncio driver."""
        return async_url(self.url)

    def __repr_args__(self) -> Any:  # never show the password
        for name, value in super().__repr_args__():
            yield name, (async_url(value).render_as_string() if name == "url" else value)

    def page_size_of(self, kind: str) -> int:
        return self.kinds[kind].page_size or self.page_size

    @classmethod
    def parse(cls, data: Any, where: str = "sql config") -> SqlConfig:
        """Validate already-parsed (and already-expanded) configuration data."""
        try:
            return cls.model_validate(data)
        except ConfigError:
            raise
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)
            )
            raise ConfigError(f"{where}: {problems}") from None

    @classmethod
    def from_yaml(cls, path: Path, environ: Mapping[str, str] | None = None) -> SqlConfig:
        """Read, expand (``${NAME}`` from ``environ``, default ``os.environ``) and validate."""
        env = os.environ if environ is None else environ
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the sql config {path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"the sql config {path} is not valid YAML: {exc}") from None
        return cls.parse(expand_env(data, env, str(path)), str(path))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SqlConfig:
        """The configuration in the file ``SHOAL_SQL_CONFIG`` of ``environ`` names."""
        env = os.environ if environ is None else environ
        path = env.get(CONFIG_ENV, "").strip()
        if not path:
            raise ConfigError(f"{CONFIG_ENV} is not set: give the path of the sql config YAML")
        return cls.from_yaml(Path(path).expanduser(), env)
