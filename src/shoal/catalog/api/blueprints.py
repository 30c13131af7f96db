"""Blueprint routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from shoal.catalog.api.deps import Caller, CatalogRoute, ServicesDep
from shoal.catalog.api.responses import JSONResponse
from shoal.catalog.auth import Action, Principal, Role, authorize
from shoal.catalog.store import Store
from shoal.errors import ForbiddenError

router = APIRouter(prefix="/v1/blueprints", tags=["Blueprints"], route_class=CatalogRoute)

BlueprintBody = Annotated[
    dict[str, Any],
    Body(
        examples=[
            {
                "identifier": "service",
                "title": "Service",
                "schema": {"properties": {"language": {"type": "string"}}},
            }
        ]
    ),
]


async def _authorize_change(caller: Principal, store: Store, identifier: str) -> None:
    authorize(caller, Action.WRITE_BLUEPRINT)
    if (
        caller.role is Role.INTEGRATION
        and await store.blueprints.created_by(identifier) != caller.client_id
    ):
        message = "an integration credential may only change the blueprints it created"
        raise ForbiddenError(message)


@router.get("", summary="List blueprints")
async def list_blueprints(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    authorize(caller, Action.READ)
    return {"ok": True, "blueprints": await services.store.blueprints.list()}


@router.post("", status_code=201, summary="Create a blueprint")
async def create_blueprint(
    caller: Caller, services: ServicesDep, body: BlueprintBody
) -> JSONResponse:
    authorize(caller, Action.WRITE_BLUEPRINT)
    blueprint = await services.store.blueprints.create(body, actor=caller.client_id)
    return JSONResponse({"ok": True, "blueprint": blueprint}, status_code=201)


@router.get("/{identifier}", summary="Get a blueprint")
async def get_blueprint(identifier: str, caller: Caller, services: ServicesDep) -> dict[str, Any]:
    authorize(caller, Action.READ)
    return {"ok": True, "blueprint": await services.store.blueprints.get(identifier)}


@router.patch("/{identifier}", summary="Update a blueprint (top-level keys are replaced)")
async def patch_blueprint(
    identifier: str, caller: Caller, services: ServicesDep, body: BlueprintBody
) -> dict[str, Any]:
    await _authorize_change(caller, services.store, identifier)
    return {"ok": True, "blueprint": await services.store.blueprints.update(identifier, body)}


@router.put("/{identifier}", summary="Replace a blueprint")
async def put_blueprint(
    identifier: str, caller: Caller, services: ServicesDep, body: BlueprintBody
) -> dict[str, Any]:
    await _authorize_change(caller, services.store, identifier)
    return {
        "ok": True,
        "blueprint": await services.store.blueprints.update(identifier, body, replace=True),
    }


@router.delete("/{identifier}", summary="Delete a blueprint without entities")
async def delete_blueprint(
    identifier: str, caller: Caller, services: ServicesDep
) -> dict[str, Any]:
    await _authorize_change(caller, services.store, identifier)
    await services.store.blueprints.delete(identifier)
    return {"ok": True}
