"""``POST /v1/auth/access_token``: exchange a credential for a bearer token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request

from shoal.catalog.api.deps import CatalogRoute, ServicesDep
from shoal.catalog.auth import TOKEN_TTL_SECONDS, issue_token
from shoal.clock import now_us

router = APIRouter(prefix="/v1/auth", tags=["Authentication"], route_class=CatalogRoute)


@router.post("/access_token", summary="Get an access token")
async def access_token(
    request: Request,
    services: ServicesDep,
    body: dict[str, Any] = Body(  # noqa: B008
        ..., examples=[{"clientId": "YOUR_CLIENT_ID", "clientSecret": "YOUR_CLIENT_SECRET"}]
    ),
) -> dict[str, Any]:
    """Returns a JWT valid for three hours (`expiresIn` seconds), as Port does."""
    principal = await services.store.credentials.authenticate(
        body.get("clientId"), body.get("clientSecret")
    )
    token = issue_token(services.signing_key, principal, now=now_us() // 1_000_000)
    return {"ok": True, "accessToken": token, "expiresIn": TOKEN_TTL_SECONDS, "tokenType": "Bearer"}
