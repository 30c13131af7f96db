"""Catalog: blueprints, a blueprint's entities (paged, sorted, searched) and one entity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from shoal.catalog.api.deps import ServicesDep
from shoal.catalog.auth import Action, authorize
from shoal.catalog.entities import Entity
from shoal.catalog.store.browse import SORTABLE, browse_entities, count_capped
from shoal.catalog.ui import present
from shoal.catalog.ui.render import PageRoute, render
from shoal.catalog.ui.session import PageSession
from shoal.errors import NotFoundError
from shoal.types import JSONObject

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

COUNT_CAP = 10_000
"""Blueprint sizes above this show as "10,000+" (counting further reads the whole index)."""
PAGE_SIZES = (25, 50, 100, 200)
MAX_PAGE = 1_000_000
PROPERTY_COLUMNS = 4


def _int(raw: str | None, default: int, low: int, high: int) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return default
    return min(max(value, low), high)


@router.get("/ui/catalog")
async def blueprints_page(
    request: Request, session: PageSession, services: ServicesDep
) -> Response:
    authorize(session.principal, Action.READ)
    blueprints = await services.store.blueprints.list()
    counts = {
        bp["identifier"]: await count_capped(services.store.database, bp["identifier"], COUNT_CAP)
        for bp in blueprints
    }
    return render(
        request, "blueprints.html", session, blueprints=blueprints, counts=counts, cap=COUNT_CAP
    )


@router.get("/ui/catalog/{blueprint}")
async def entities_page(
    request: Request, blueprint: str, session: PageSession, services: ServicesDep
) -> Response:
    authorize(session.principal, Action.READ)
    spec = await services.store.blueprints.get(blueprint)
    params = request.query_params
    q = params.get("q", "").strip()
    sort = params.get("sort", "identifier")
    sort = sort if sort in SORTABLE else "identifier"
    descending = params.get("dir") == "desc"
    size = _int(params.get("size"), 50, PAGE_SIZES[0], PAGE_SIZES[-1])
    page_number = _int(params.get("page"), 1, 1, MAX_PAGE)
    page = await browse_entities(
        services.store.database,
        blueprint,
        offset=(page_number - 1) * size,
        limit=size,
        sort=sort,
        descending=descending,
        text=q or None,
    )
    properties = list(_properties(spec).items())[:PROPERTY_COLUMNS]
    first = (page_number - 1) * size + 1
    return render(
        request,
        "entities.html",
        session,
        blueprint=spec,
        page=page,
        rows=[_row(entity, properties) for entity in page.entities],
        properties=properties,
        q=q,
        sort=sort,
        descending=descending,
        size=size,
        sizes=PAGE_SIZES,
        page_number=page_number,
        first=first,
        last=first + len(page.entities) - 1,
    )


def _properties(blueprint: JSONObject) -> dict[str, Any]:
    schema = blueprint.get("schema") or {}
    properties = schema.get("properties") or {}
    return properties if isinstance(properties, dict) else {}


def _row(entity: Entity, properties: list[tuple[str, Any]]) -> dict[str, Any]:
    return {
        "entity": entity,
        "values": [entity.properties.get(name) for name, _ in properties],
        "source": present.datasource_integration(entity.datasource),
    }


@router.get("/ui/catalog/{blueprint}/{identifier:path}")
async def entity_page(
    request: Request,
    blueprint: str,
    identifier: str,
    session: PageSession,
    services: ServicesDep,
) -> Response:
    authorize(session.principal, Action.READ)
    spec = await services.store.blueprints.get(blueprint)
    entity = await services.store.entities.get(blueprint, identifier)
    incoming = await services.store.entities.related(blueprint, identifier)
    source = present.datasource_integration(entity.datasource)
    if source is not None:
        try:
            await services.store.integrations.get(source)
        except NotFoundError:
            source = None
    return render(
        request,
        "entity.html",
        session,
        blueprint=spec,
        entity=entity,
        properties=_property_rows(entity, _properties(spec)),
        outgoing=_outgoing(entity, spec),
        incoming=incoming,
        source=source,
    )


def _property_rows(entity: Entity, schema: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """``(name, title, value)``: the blueprint's properties in order, then any others."""
    rows = [
        (name, str((spec or {}).get("title") or name), entity.properties.get(name))
        for name, spec in schema.items()
    ]
    rows.extend(
        (name, name, value) for name, value in entity.properties.items() if name not in schema
    )
    return rows


def _outgoing(entity: Entity, blueprint: JSONObject) -> list[dict[str, Any]]:
    """Each relation of the blueprint with the target blueprint and the related identifiers."""
    relations = blueprint.get("relations") or {}
    rows: list[dict[str, Any]] = []
    for name, spec in relations.items():
        value = entity.relations.get(name)
        targets = value if isinstance(value, list) else [] if value is None else [value]
        rows.append(
            {
                "name": name,
                "title": spec.get("title") or name,
                "target": spec.get("target"),
                "identifiers": [str(target) for target in targets],
            }
        )
    return rows
