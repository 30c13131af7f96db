"""The configuration of the sql integration: one YAML file, validated with pydantic.

``SHOAL_SQL_CONFIG`` holds the path of the file; :meth:`SqlConfig.from_env` reads it, expands
``${NAME}`` references from the environment (keep passwords out of the file) and validates
it, as the http integration does (:mod:`shoal.integrations._config_file`)::

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

from typing import Annotated, Any, ClassVar, Final

from pydantic import Field, PositiveInt, SecretStr, StringConstraints, field_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from shoal.errors import ConfigError
from shoal.integrations._config_file import ConfigModel, KindName, YamlConfig

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


def async_url(url: str) -> URL:
    """``url`` as a SQLAlchemy URL with an asyncio driver; :class:`ConfigError` if impossible."""
    unparsable = (
        "sql config: url is not a SQLAlchemy database URL (a password with @, : or / in it "
        "must be percent-encoded there, or given as password)"
    )
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # not echoed: it may hold a password
        raise ConfigError(unparsable) from None
    if "@" in (parsed.host or ""):  # an unencoded @ in the password: the rest went to the host
        raise ConfigError(unparsable)
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


class KindQuery(ConfigModel):
    """The query whose rows are the items of one kind."""

    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    params: dict[str, Any] = Field(default_factory=dict)
    page_size: PositiveInt | None = None


class SqlConfig(YamlConfig):
    """A database and the kinds its queries serve."""

    config_name: ClassVar[str] = "sql config"
    config_env: ClassVar[str] = CONFIG_ENV

    url: str
    password: SecretStr | None = None
    """The database password, when not in ``url`` (where it must be percent-encoded)."""
    page_size: PositiveInt = 1000
    kinds: Annotated[dict[KindName, KindQuery], Field(min_length=1)]

    @field_validator("url")
    @classmethod
    def _has_async_driver(cls, url: str) -> str:
        async_url(url)
        return url

    @property
    def engine_url(self) -> URL:
        """:attr:`url` with its asyncio driver (and :attr:`password`, if given)."""
        url = async_url(self.url)
        if self.password is not None:
            url = url.set(password=self.password.get_secret_value())
        return url

    def __repr_args__(self) -> Any:  # never show the password
        for name, value in super().__repr_args__():
            yield name, (async_url(value).render_as_string() if name == "url" else value)

    def page_size_of(self, kind: str) -> int:
        return self.kinds[kind].page_size or self.page_size
