"""What every route needs: the services, the caller's identity, and a parsed JSON body."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote_plus

import orjson
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Histogram

from shoal.catalog.auth import Principal, Role, verify_token
from shoal.catalog.notify import EventHub
from shoal.catalog.settings import CatalogSettings
from shoal.catalog.store import Store
from shoal.errors import BadRequestError, ForbiddenError, PayloadTooLargeError, UnauthorizedError

__all__ = [
    "Caller",
    "Metrics",
    "Services",
    "datasource_for",
    "get_services",
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
    token = (
        credentials.credentials if credentials is not None else request.cookies.get("shoal_token")
    )
    if not token:
        message = "missing access token: send 'Authorization: Bearer <token>'"
        raise UnauthorizedError(message)
    return verify_token(services.signing_key, token)


Caller = Annotated[Principal, Depends(current_principal)]
ServicesDep = Annotated[Services, Depends(get_services)]


async def read_json(request: Request) -> Any:
    """The request body parsed with orjson; an empty body is ``{}``."""
    services = get_services(request)
    limit = services.settings.max_body_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        message = f"the request body is over the {limit} byte limit"
        raise PayloadTooLargeError(message)
    body = await request.body()
    if len(body) > limit:
        message = f"the request body is over the {limit} byte limit"
        raise PayloadTooLargeError(message)
    if not body.strip():
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        message = f"the request body is not valid JSON: {exc}"
        raise BadRequestError(message, code="invalid_json") from None


def raw_tail(request: Request, skip: int, drop_last: int = 0) -> str:
    """A path segment that may hold ``/`` (sent as ``%2F``) and ``+`` (a space), decoded.

    Ocean quotes entity identifiers and kinds with ``quote_plus``; routing on the raw path is the
    only way to tell an encoded ``%2F`` from a real separator and ``%2B`` from ``+``.
    """
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    segments = raw.decode("latin-1").split("?")[0].split("/")
    tail = segments[skip : len(segments) - drop_last if drop_last else None]
    return unquote_plus("/".join(tail))


_OCEAN_AGENT = re.compile(
    r"^port-ocean/(?P<type>[^/]+)/(?P<version>[^/]+)/(?P<id>[^/]+)(/(?P<feature>[^/]+))?$"
)


def datasource_for(request: Request, principal: Principal) -> str:
    """The datasource stamped on entity writes: the writer's User-Agent, as Port does.

    An integration credential may only write as its own integration.
    """
    agent = request.headers.get("user-agent", "") or principal.client_id
    if principal.role is Role.INTEGRATION:
        match = _OCEAN_AGENT.match(agent)
        if match is None or match["id"] != principal.integration:
            message = (
                f"an integration credential writes as 'port-ocean/<type>/<version>/"
                f"{principal.integration}/exporter'; got User-Agent {agent!r}"
            )
            raise ForbiddenError(message)
    return agent[:1000]
