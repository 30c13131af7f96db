"""The configuration of the http integration: one YAML file, validated with pydantic.

``SHOAL_HTTP_CONFIG`` holds the path of the file; :meth:`HttpConfig.from_env` reads it,
expands ``${NAME}`` references from the environment and validates it (all three shared with
the sql integration: :mod:`shoal.integrations._config_file`).
Keys are camelCase; unknown keys are errors (a typo must not silently disable, say, auth).
Every mistake -- a missing file, bad YAML, a wrong type, a jq expression that does not compile
-- is a :class:`~shoal.errors.ConfigError` naming the offending key. See
``docs/integrations/http.md`` for the format.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Final, Literal, Self, TypeAlias

import jq
from pydantic import (
    AfterValidator,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    StringConstraints,
    model_validator,
)

from shoal.integrations._config_file import ConfigModel, KindName, YamlConfig

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
QueryValue: TypeAlias = str | int | float | bool


# --- authentication -------------------------------------------------------------------------


class NoAuth(ConfigModel):
    type: Literal["none"] = "none"


class BearerAuth(ConfigModel):
    """``Authorization: Bearer <token>``."""

    type: Literal["bearer"]
    token: SecretStr


class BasicAuth(ConfigModel):
    """HTTP basic authentication."""

    type: Literal["basic"]
    username: str
    password: SecretStr


class ApiKeyAuth(ConfigModel):
    """An API key sent in a header of its own (``X-API-Key`` unless ``header`` says otherwise)."""

    type: Literal["apiKey"]
    header: str = "X-API-Key"
    key: SecretStr


Auth: TypeAlias = Annotated[
    NoAuth | BearerAuth | BasicAuth | ApiKeyAuth, Field(discriminator="type")
]


# --- pagination -----------------------------------------------------------------------------


class NoPagination(ConfigModel):
    """One request returns every item."""

    type: Literal["none"] = "none"


class PagePagination(ConfigModel):
    """``?page=1&per_page=100``, ``?page=2...``: stops at an empty page (or ``hasMorePath``)."""

    type: Literal["page"]
    page_param: str = "page"
    first_page: int = 1
    size_param: str | None = "per_page"
    size: PositiveInt = 100
    has_more_path: JqExpression | None = None


class OffsetPagination(ConfigModel):
    """``?offset=0&limit=100``, then ``offset`` += items received: stops at an empty page."""

    type: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: PositiveInt = 100
    has_more_path: JqExpression | None = None


class CursorPagination(ConfigModel):
    """The next cursor is read from the body with ``cursorPath``; null or "" ends the list."""

    type: Literal["cursor"]
    cursor_path: JqExpression
    cursor_param: str = "cursor"
    size_param: str | None = None
    size: PositiveInt | None = None


class LinkPagination(ConfigModel):
    """RFC 8288 ``Link: <...>; rel="next"`` headers (GitHub, GitLab ...)."""

    type: Literal["link"]
    size_param: str | None = None
    size: PositiveInt | None = None


Pagination: TypeAlias = Annotated[
    NoPagination | PagePagination | OffsetPagination | CursorPagination | LinkPagination,
    Field(discriminator="type"),
]


# --- the file -------------------------------------------------------------------------------


_FILTER: Final = re.compile(r"\bselect\s*\(")


class KindConfig(ConfigModel):
    """Where the items of one kind come from."""

    path: str
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, QueryValue] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    items_path: JqExpression = "."
    pagination: Pagination = Field(default_factory=NoPagination)
    max_pages: PositiveInt = 10_000

    @model_validator(mode="after")
    def _items_path_does_not_filter(self) -> Self:
        """Page and offset pagination read the end of the list (an empty page) and the next
        offset off the items: a filter there would end the listing at the first page it
        empties, and what follows would be deleted as gone from the source."""
        numbered = isinstance(self.pagination, PagePagination | OffsetPagination)
        if numbered and _FILTER.search(self.items_path):
            message = (
                "itemsPath must select a page's items, not filter them (with page or offset "
                "pagination a page it empties ends the listing): filter with the resource's "
                "selector.query in the mapping instead"
            )
            raise ValueError(message)
        return self


class RateLimit(ConfigModel):
    """Client-side pacing, and how long a server may ask us to wait."""

    requests_per_second: PositiveFloat | None = None
    max_retry_after: PositiveFloat = 120.0


class Retry(ConfigModel):
    """Retries of 429, 5xx and network errors (timeouts included)."""

    max_retries: NonNegativeInt = 4
    backoff: PositiveFloat = 1.0
    max_backoff: PositiveFloat = 30.0


class HttpConfig(YamlConfig):
    """A REST API and the kinds it serves."""

    config_name: ClassVar[str] = "http config"
    config_env: ClassVar[str] = CONFIG_ENV

    base_url: Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+")]
    auth: Auth = Field(default_factory=NoAuth)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: PositiveFloat = 30.0
    verify_tls: bool = True
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    retry: Retry = Field(default_factory=Retry)
    kinds: Annotated[dict[KindName, KindConfig], Field(min_length=1)]
