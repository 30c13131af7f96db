"""The configuration of the http integration: one YAML file, validated with pydantic.

``SHOAL_HTTP_CONFIG`` holds the path of the file; :meth:`HttpConfig.from_env` reads it,
expands ``${NAME}`` references from the environment (:mod:`.envsubst`) and validates it.
Keys are camelCase; unknown keys are errors (a typo must not silently disable, say, auth).
Every mistake -- a missing file, bad YAML, a wrong type, a jq expression that does not compile
-- is a :class:`~shoal.errors.ConfigError` naming the offending key. See
``docs/integrations/http.md`` for the format.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeAlias

import jq
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    StringConstraints,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from shoal.errors import ConfigError
from shoal.integrations.http.envsubst import expand_env

__all__ = [
    "CONFIG_ENV",
    "ApiKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "CursorPagination",
    "HttpConfig",
    "KindConfig",
    "LinkPagination",
    "NoAuth",
    "NoPagination",
    "OffsetPagination",
    "PagePagination",
    "RateLimit",
    "Retry",
]

CONFIG_ENV: Final = "SHOAL_HTTP_CONFIG"


def _compiles(expression: str) -> str:
    try:
        jq.compile(expression)
    except ValueError as exc:
        raise ValueError(f"not a valid jq expression: {exc}") from None
    return expression


JqExpression: TypeAlias = Annotated[str, AfterValidator(_compiles)]
KindName: TypeAlias = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
QueryValue: TypeAlias = str | int | float | bool


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


# --- authentication -------------------------------------------------------------------------


class NoAuth(_Model):
    type: Literal["none"] = "none"


class BearerAuth(_Model):
    """``Authorization: Bearer <token>``."""

    type: Literal["bearer"]
    token: SecretStr


class BasicAuth(_Model):
    """HTTP basic authentication."""

    type: Literal["basic"]
    username: str
    password: SecretStr


class ApiKeyAuth(_Model):
    """An API key sent in a header of its own (``X-API-Key`` unless ``header`` says otherwise)."""

    type: Literal["apiKey"]
    header: str = "X-API-Key"
    key: SecretStr


Auth: TypeAlias = Annotated[
    NoAuth | BearerAuth | BasicAuth | ApiKeyAuth, Field(discriminator="type")
]


# --- pagination -----------------------------------------------------------------------------


class NoPagination(_Model):
    """One request returns every item."""

    type: Literal["none"] = "none"


class PagePagination(_Model):
    """``?page=1&per_page=100``, ``?page=2...``: stops at an empty page (or ``hasMorePath``)."""

    type: Literal["page"]
    page_param: str = "page"
    first_page: int = 1
    size_param: str | None = "per_page"
    size: PositiveInt = 100
    has_more_path: JqExpression | None = None


class OffsetPagination(_Model):
    """``?offset=0&limit=100``, then ``offset`` += items received: stops at an empty page."""

    type: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: PositiveInt = 100
    has_more_path: JqExpression | None = None


class CursorPagination(_Model):
    """The next cursor is read from the body with ``cursorPath``; null or "" ends the list."""

    type: Literal["cursor"]
    cursor_path: JqExpression
    cursor_param: str = "cursor"
    size_param: str | None = None
    size: PositiveInt | None = None


class LinkPagination(_Model):
    """RFC 8288 ``Link: <...>; rel="next"`` headers (GitHub, GitLab ...)."""

    type: Literal["link"]
    size_param: str | None = None
    size: PositiveInt | None = None


Pagination: TypeAlias = Annotated[
    NoPagination | PagePagination | OffsetPagination | CursorPagination | LinkPagination,
    Field(discriminator="type"),
]


# --- the file -------------------------------------------------------------------------------


class KindConfig(_Model):
    """Where the items of one kind come from."""

    path: str
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, QueryValue] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    items_path: JqExpression = "."
    pagination: Pagination = Field(default_factory=NoPagination)
    max_pages: PositiveInt = 10_000


class RateLimit(_Model):
    """Client-side pacing, and how long a server may ask us to wait."""

    requests_per_second: PositiveFloat | None = None
    max_retry_after: PositiveFloat = 120.0


class Retry(_Model):
    """Retries of 429, 5xx and network errors (timeouts included)."""

    max_retries: NonNegativeInt = 4
    backoff: PositiveFloat = 1.0
    max_backoff: PositiveFloat = 30.0


class HttpConfig(_Model):
    """A REST API and the kinds it serves."""

    base_url: Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+")]
    auth: Auth = Field(default_factory=NoAuth)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: PositiveFloat = 30.0
    verify_tls: bool = True
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    retry: Retry = Field(default_factory=Retry)
    kinds: Annotated[dict[KindName, KindConfig], Field(min_length=1)]

    @classmethod
    def parse(cls, data: Any, where: str = "http config") -> HttpConfig:
        """Validate already-parsed (and already-expanded) configuration data."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
                for error in exc.errors(include_url=False)
            )
            raise ConfigError(f"{where}: {problems}") from None

    @classmethod
    def from_yaml(cls, path: Path, environ: Mapping[str, str] | None = None) -> HttpConfig:
        """Read, expand (``${NAME}`` from ``environ``, default ``os.environ``) and validate."""
        env = os.environ if environ is None else environ
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the http config {path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"the http config {path} is not valid YAML: {exc}") from None
        return cls.parse(expand_env(data, env, str(path)), str(path))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HttpConfig:
        """The configuration in the file ``SHOAL_HTTP_CONFIG`` of ``environ`` names."""
        env = os.environ if environ is None else environ
        path = env.get(CONFIG_ENV, "").strip()
        if not path:
            raise ConfigError(f"{CONFIG_ENV} is not set: give the path of the http config YAML")
        return cls.from_yaml(Path(path).expanduser(), env)
