"""Organization, provisioning and default-resource routes Ocean calls at startup."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from shoal.catalog.api.deps import Caller, CatalogRoute
from shoal.catalog.api.responses import JSONResponse

router = APIRouter(prefix="/v1", tags=["Organization"], route_class=CatalogRoute)


@router.get("/organization", summary="The organization and its feature flags")
async def organization(_caller: Caller) -> dict[str, Any]:
    # No feature flags: keeps Ocean in plain ocean-core mode (no lakehouse, no DSP lifecycle).
    return {
        "ok": True,
        "organization": {
            "id": "org_local",
            "name": "local",
            "featureFlags": [],
            "isBlocked": False,
        },
    }


@router.post("/actions", status_code=201, summary="Accept an action definition (not run by Shoal)")
@router.post("/pages", status_code=201, summary="Accept a page definition (not rendered by Shoal)")
@router.post(
    "/blueprints/{blueprint}/scorecards",
    status_code=201,
    summary="Accept a scorecard (not evaluated)",
)
async def accept_default_resource(_caller: Caller) -> JSONResponse:
    return JSONResponse({"ok": True}, status_code=201)
