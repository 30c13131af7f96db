"""Entity routes: upserts (single and bulk), deletes, search and reconciliation reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from shoal.catalog.api.deps import (
    Caller,
    CatalogRoute,
    Services,
    ServicesDep,
    datasource_for,
    raw_tail,
    read_json,
)
from shoal.catalog.api.responses import JSONResponse
from shoal.catalog.auth import Action, Principal, Role, authorize
from shoal.catalog.store import WriteOptions
from shoal.catalog.store.entities import parse_search_body
from shoal.clock import from_iso
from shoal.errors import CatalogError, InvalidInputError, PayloadTooLargeError
from shoal.types import JSONObject

router = APIRouter(prefix="/v1", tags=["Entities"], route_class=CatalogRoute)

Flag = Annotated[str | None, Query()]

_ENTITY_EXAMPLE = {
    "identifier": "payments",
    "title": "Payments",
    "properties": {"language": "python"},
    "relations": {},
}


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    message = f"expected true or false, got {value!r}"
    raise InvalidInputError(message)


def _json_body(schema: JSONObject, example: Any = None) -> JSONObject:
    """``openapi_extra`` documenting a required JSON request body (the routes read it raw)."""
    content: JSONObject = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"requestBody": {"content": {"application/json": content}, "required": True}}


def _check_bulk_size(services: Services, count: int) -> None:
    limit = services.settings.max_bulk_entities
    if count > limit:
        message = f"at most {limit} entities per bulk request; got {count}"
        raise PayloadTooLargeError(message)


def _options(
    request: Request,
    caller: Principal,
    upsert: str | None,
    merge: str | None,
    create_missing: str | None,
    validation_only: str | None,
) -> WriteOptions:
    authorize(caller, Action.WRITE_ENTITY)
    return WriteOptions(
        create_only=not _flag(upsert, False),
        merge=_flag(merge, False),
        create_missing_related_entities=_flag(create_missing, False),
        validation_only=_flag(validation_only, False),
        datasource=datasource_for(request, caller),
        actor=caller.client_id,
    )


@router.post(
    "/blueprints/{blueprint}/entities",
    summary="Create or update one entity",
    openapi_extra=_json_body({"type": "object"}, example=_ENTITY_EXAMPLE),
)
async def upsert_entity(
    blueprint: str,
    request: Request,
    caller: Caller,
    services: ServicesDep,
    upsert: Flag = None,
    merge: Flag = None,
    create_missing_related_entities: Flag = None,
    validation_only: Flag = None,
) -> JSONResponse:
    options = _options(
        request, caller, upsert, merge, create_missing_related_entities, validation_only
    )
    body = await read_json(request)
    result = await services.store.entities.upsert(blueprint, [body], options)
    if result.errors:
        error = result.errors[0]
        raise _error_from(error)
    services.metrics.entities_written.inc()
    entity = result.stored[0]
    status = 201 if result.entities[0]["created"] else 200
    return JSONResponse({"ok": True, "entity": entity.to_json()}, status_code=status)


def _error_from(error: dict[str, Any]) -> CatalogError:
    exc = CatalogError(error["message"], code=error["error"])
    exc.status = error["statusCode"]
    return exc


@router.post(
    "/blueprints/{blueprint}/entities/bulk",
    summary="Create or update many entities of one blueprint",
    openapi_extra=_json_body(
        {
            "type": "object",
            "properties": {"entities": {"type": "array", "items": {"type": "object"}}},
            "required": ["entities"],
        },
        example={"entities": [_ENTITY_EXAMPLE]},
    ),
)
async def upsert_entities(
    blueprint: str,
    request: Request,
    caller: Caller,
    services: ServicesDep,
    upsert: Flag = None,
    merge: Flag = None,
    create_missing_related_entities: Flag = None,
    validation_only: Flag = None,
) -> JSONResponse:
    """200 when every entity was stored, 207 with per-index `errors` otherwise."""
    options = _options(
        request, caller, upsert, merge, create_missing_related_entities, validation_only
    )
    body = await read_json(request)
    entities = body.get("entities") if isinstance(body, dict) else None
    if not isinstance(entities, list):
        message = 'the body must be {"entities": [...]}'
        raise InvalidInputError(message)
    _check_bulk_size(services, len(entities))
    result = await services.store.entities.upsert(blueprint, entities, options, stored=False)
    services.metrics.entities_written.inc(len(result.entities))
    services.metrics.entity_errors.inc(len(result.errors))
    status = 207 if result.errors else 200
    return JSONResponse(
        {"ok": True, "entities": result.entities, "errors": result.errors}, status_code=status
    )


@router.post(
    "/blueprints/{blueprint}/entities/unchanged",
    summary="Confirm unchanged entities by digest (Shoal)",
    openapi_extra=_json_body(
        {
            "type": "object",
            "properties": {
                "entities": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "identifier": {"type": "string"},
                            "digest": {"type": "string"},
                        },
                        "required": ["identifier", "digest"],
                    },
                }
            },
            "required": ["entities"],
        },
        example={
            "entities": [{"identifier": "payments", "digest": "9f0e4c1d2b3a4f5e6d7c8b9a0f1e2d3c"}]
        },
    ),
)
async def confirm_unchanged(
    blueprint: str,
    request: Request,
    caller: Caller,
    services: ServicesDep,
    merge: Flag = None,
    create_missing_related_entities: Flag = None,
) -> dict[str, Any]:
    """A bulk upsert by digest: `unchanged` lists the positions whose entity the body behind
    the digest would not change (they are stamped as written, like an unchanged upsert); the
    client then upserts the others in full. The digest is shoal.content_digest.body_digest of
    the entity body; same flags and User-Agent as the bulk upsert it stands for."""
    options = _options(request, caller, "true", merge, create_missing_related_entities, None)
    body = await read_json(request)
    items = body.get("entities") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(
        isinstance(item, dict)
        and isinstance(item.get("identifier"), str)
        and isinstance(item.get("digest"), str)
        for item in items
    ):
        message = 'the body must be {"entities": [{"identifier": "...", "digest": "..."}, ...]}'
        raise InvalidInputError(message)
    _check_bulk_size(services, len(items))
    same = await services.store.entities.confirm_unchanged(
        blueprint, [(item["identifier"], item["digest"]) for item in items], options
    )
    services.metrics.entities_written.inc(len(same))
    return {"ok": True, "unchanged": same}


@router.post(
    "/blueprints/{blueprint}/bulk/entities/delete",
    summary="Delete many entities of one blueprint",
    openapi_extra=_json_body(
        {
            "type": "object",
            "properties": {"entities": {"type": "array", "items": {"type": "string"}}},
            "required": ["entities"],
        }
    ),
)
async def delete_entities(
    blueprint: str,
    request: Request,
    caller: Caller,
    services: ServicesDep,
    delete_dependents: Flag = None,
) -> dict[str, Any]:
    authorize(caller, Action.WRITE_ENTITY)
    body = await read_json(request)
    identifiers = body.get("entities") if isinstance(body, dict) else None
    if not isinstance(identifiers, list) or not all(isinstance(i, str) for i in identifiers):
        message = 'the body must be {"entities": ["identifier", ...]}'
        raise InvalidInputError(message)
    _check_bulk_size(services, len(identifiers))
    deleted = await services.store.entities.delete_many(
        blueprint,
        identifiers,
        delete_dependents=_flag(delete_dependents, False),
        owner=_owner(caller),
    )
    services.metrics.entities_deleted.inc(len(deleted.identifiers) + len(deleted.dependents))
    return {
        "ok": True,
        "deletedEntities": deleted.identifiers,
        "deletedDependents": [
            {"blueprint": bp, "identifier": identifier} for bp, identifier in deleted.dependents
        ],
    }


def _owner(caller: Principal) -> str | None:
    """An integration credential deletes only entities stamped with its own datasource."""
    return caller.integration if caller.role is Role.INTEGRATION else None


@router.get("/blueprints/{blueprint}/entities", summary="A page of a blueprint's entities")
async def list_entities(
    blueprint: str,
    caller: Caller,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    sort: str = "identifier",
    order: str = "asc",
    search: str | None = None,
) -> dict[str, Any]:
    authorize(caller, Action.READ)
    await services.store.blueprints.get(blueprint)
    page, total = await services.store.entities.page(
        blueprint, offset=offset, limit=limit, sort=sort, descending=order == "desc", text=search
    )
    return {"ok": True, "entities": [e.to_json() for e in page], "total": total}


@router.get("/blueprints/{blueprint}/entities/{identifier:path}", summary="Get one entity")
async def get_entity(
    blueprint: str, identifier: str, request: Request, caller: Caller, services: ServicesDep
) -> dict[str, Any]:
    authorize(caller, Action.READ)
    entity = await services.store.entities.get(blueprint, raw_tail(request, 5))
    return {"ok": True, "entity": entity.to_json()}


@router.delete("/blueprints/{blueprint}/entities/{identifier:path}", summary="Delete one entity")
async def delete_entity(
    blueprint: str,
    identifier: str,
    request: Request,
    caller: Caller,
    services: ServicesDep,
    delete_dependents: Flag = None,
) -> dict[str, Any]:
    authorize(caller, Action.WRITE_ENTITY)
    deleted = await services.store.entities.delete_one(
        blueprint,
        raw_tail(request, 5),
        delete_dependents=_flag(delete_dependents, False),
        owner=_owner(caller),
    )
    services.metrics.entities_deleted.inc(1 + len(deleted.dependents))
    return {"ok": True}


@router.post(
    "/blueprints/entities/datasource-entities",
    summary="Entities written by one datasource (reconciliation)",
    openapi_extra=_json_body(
        {
            "type": "object",
            "properties": {
                "datasource_prefix": {"type": "string"},
                "datasource_suffix": {"type": "string"},
                "limit": {"type": "integer"},
                "before": {"type": "string"},
                "from": {"type": "string"},
            },
            "required": ["datasource_prefix", "datasource_suffix"],
        }
    ),
)
async def datasource_entities(
    request: Request, caller: Caller, services: ServicesDep
) -> JSONResponse:
    authorize(caller, Action.READ)
    body = await read_json(request)
    if not isinstance(body, dict):
        message = "the body must be a JSON object"
        raise InvalidInputError(message)
    prefix, suffix = body.get("datasource_prefix", ""), body.get("datasource_suffix", "")
    limit = body.get("limit", 1000)
    before = body.get("before")
    cursor = body.get("from")
    if not isinstance(prefix, str) or not isinstance(suffix, str):
        message = "datasource_prefix and datasource_suffix must be strings"
        raise InvalidInputError(message)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10_000:
        message = "limit must be an integer from 1 to 10000"
        raise InvalidInputError(message)
    if before is not None and not isinstance(before, str):
        message = "before must be an ISO-8601 timestamp"
        raise InvalidInputError(message)
    if cursor is not None and not isinstance(cursor, str):
        message = "from must be a cursor string from a previous page"
        raise InvalidInputError(message)
    entities, next_cursor = await services.store.entities.datasource_page(
        prefix=prefix,
        suffix=suffix,
        before=from_iso(before) if before else None,
        limit=limit,
        cursor=cursor,
    )
    # straight to orjson: a delete phase reads every owned entity through here, page by page
    return JSONResponse({"ok": True, "entities": entities, "next": next_cursor})


@router.post(
    "/entities/search",
    summary="Search entities",
    openapi_extra=_json_body(
        {"type": "object"},
        example={
            "combinator": "and",
            "rules": [{"property": "$blueprint", "operator": "=", "value": "service"}],
        },
    ),
)
async def search_entities(
    request: Request,
    caller: Caller,
    services: ServicesDep,
    include: Annotated[list[str] | None, Query()] = None,
    exclude_calculated_properties: Flag = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> dict[str, Any]:
    """`include` is repeated (`include=identifier&include=properties.color`); results are
    projected to those paths."""
    authorize(caller, Action.READ)
    query = parse_search_body(await read_json(request))
    entities = await services.store.entities.search(query, include=include, limit=limit)
    return {"ok": True, "entities": entities}
