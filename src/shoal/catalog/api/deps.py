"""What every route needs: the services, the caller's identity, and a parsed JSON body."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote_plus

import orjson
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.responses import Response

from shoal.catalog.auth import Principal, Role, verify_token
from shoal.catalog.entities import datasource_owner
from shoal.catalog.notify import EventHub
from shoal.catalog.settings import CatalogSettings
from shoal.catalog.store import Store
from shoal.catalog.webhooks import WebhookDispatcher
from shoal.errors import (
    BadRequestError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    UnauthorizedError,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "Caller",
    "CatalogRoute",
    "Metrics",
    "Services",
    "datasource_for",
    "get_services",
    "parse_json",
    "raw_tail",
    "read_json",
]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shoal_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shoal_http_request_seconds", "HTTP request latency", ["route"], registry=self.registry
        )
        self.entities_written = Counter(
            "shoal_entities_written", "Entities stored by upserts", registry=self.registry
        )
        self.entity_errors = Counter(
            "shoal_entity_write_errors", "Entities refused by upserts", registry=self.registry
        )
        self.entities_deleted = Counter(
            "shoal_entities_deleted", "Entities deleted", registry=self.registry
        )
        self.resync_requests = Counter(
            "shoal_resync_requests", "Resync requests recorded", ["source"], registry=self.registry
        )
        self.stale_runs = Counter(
            "shoal_runs_failed_stale",
            "Runs marked failed after their heartbeat stopped",
            registry=self.registry,
        )


@dataclass(slots=True)
class Services:
    settings: CatalogSettings
    store: Store
    hub: EventHub
    signing_key: str
    metrics: Metrics
    webhooks: WebhookDispatcher

    async def caller(self, token: str) -> Principal:
        """Who an access token names; refused once the web UI session it was issued for has
        been signed out of."""
        principal = verify_token(self.signing_key, token)
        if principal.session is not None and await self.store.credentials.session_ended(
            principal.session
        ):
            message = "this session has been signed out of: sign in again"
            raise UnauthorizedError(message)
        return principal


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


_bearer = HTTPBearer(
    auto_error=False, description="An access token from POST /v1/auth/access_token"
)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    services = get_services(request)
    if credentials is not None:
        return await services.caller(credentials.credentials)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        message = "missing access token: send 'Authorization: Bearer <token>'"
        raise UnauthorizedError(message)
    if request.method not in _COOKIE_METHODS:
        # A browser sends the cookie with any page's form or simple request to this site:
        # the UI's own pages read through the API, and write through its forms (CSRF-checked).
        message = "a UI session may only read through the API: send 'Authorization: Bearer <token>'"
        raise UnauthorizedError(message)
    return await services.caller(token)


SESSION_COOKIE = "shoal_token"
"""The UI's session cookie: a signed access token (see :mod:`shoal.catalog.ui.session`)."""
_COOKIE_METHODS = frozenset({"GET", "HEAD"})


Caller = Annotated[Principal, Depends(current_principal)]
ServicesDep = Annotated[Services, Depends(get_services)]


MAX_JSON_DEPTH = 100
"""Deepest nesting accepted in a JSON body (orjson cannot write documents deeper than 254)."""

_JSON_KEY = "shoal.json_body"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 above ``max_body_bytes`` (checked before reading it)."""
    limit = get_services(request).settings.max_body_bytes
    message = f"the request body is over the {limit} byte limit"
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLargeError(message)
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLargeError(message)
    return body


def parse_json(body: bytes) -> Any:
    """Parse a request body with orjson and check what the store can keep.

    Refused: invalid JSON (400), nesting deeper than :data:`MAX_JSON_DEPTH` and strings holding
    U+0000 (422; PostgreSQL text cannot store NUL, so it is refused at the door rather than at
    every place a string reaches SQL). An empty body is ``{}``.
    """
    if not body.strip():
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        message = f"the request body is not valid JSON: {exc}"
        raise BadRequestError(message, code="invalid_json") from None
    check_nul = b"\\u0000" in body  # JSON can only carry NUL as this escape
    if not check_nul:
        _check_depth(value)
        return value
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                message = "JSON strings may not contain the NUL character (\\u0000)"
                raise InvalidInputError(message)
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                message = f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
                raise InvalidInputError(message)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


_CONTAINERS = (dict, list)


def _check_depth(value: Any) -> None:
    """:func:`parse_json`'s depth rule, visiting containers only, one nesting level at a time
    (a bulk body holds thousands of scalars that cannot nest)."""
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        if depth >= MAX_JSON_DEPTH:
            message = f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
            raise InvalidInputError(message)
        level = [
            child
            for item in level
            for child in (item.values() if type(item) is dict else item)
            if type(child) in _CONTAINERS
        ]
        depth += 1


async def read_json(request: Request) -> Any:
    """The request body through :func:`parse_json`, parsed once per request."""
    if _JSON_KEY not in request.scope:
        request.scope[_JSON_KEY] = parse_json(await read_body(request))
    return request.scope[_JSON_KEY]


class CatalogRequest(Request):
    """``Body()`` parameters are parsed by :func:`read_json` too (FastAPI calls ``json()``)."""

    async def json(self) -> Any:
        return await read_json(self)


class CatalogRoute(APIRoute):
    """Every API route: no NUL in the path or query, and the body limit and JSON checks of
    :func:`read_json` apply before FastAPI parses anything (its errors are Port-shaped JSON)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            request = CatalogRequest(request.scope, request.receive)
            if "\x00" in request.scope["path"]:
                message = "no such resource: the path contains a NUL character"
                raise NotFoundError(message)
            if b"%00" in request.scope.get("query_string", b""):
                message = "query parameters may not contain the NUL character"
                raise InvalidInputError(message)
            if request.method in _BODY_METHODS:
                body = await read_body(request)
                content_type = request.headers.get("content-type", "")
                if body and (not content_type or "json" in content_type):
                    await read_json(request)
            return await handler(request)

        return checked


def raw_tail(request: Request, skip: int, drop_last: int = 0) -> str:
    """A path segment that may hold ``/`` (sent as ``%2F``) and ``+`` (a space), decoded.

    Ocean quotes entity identifiers and kinds with ``quote_plus``; routing on the raw path is the
    only way to tell an encoded ``%2F`` from a real separator and ``%2B`` from ``+``.
    """
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    segments = raw.decode("latin-1").split("?")[0].split("/")
    tail = segments[skip : len(segments) - drop_last if drop_last else None]
    return unquote_plus("/".join(tail))


def datasource_for(request: Request, principal: Principal) -> str:
    """The datasource stamped on entity writes: the writer's User-Agent, as Port does.

    An integration credential may only write as its own integration.
    """
    agent = request.headers.get("user-agent", "") or principal.client_id
    if principal.role is Role.INTEGRATION and datasource_owner(agent) != principal.integration:
        message = (
            f"an integration credential writes as 'port-ocean/<type>/<version>/"
            f"{principal.integration}/exporter'; got User-Agent {agent!r}"
        )
        raise ForbiddenError(message)
    return agent[:1000]
