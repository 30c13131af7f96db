"""The ingest URLs advertised in each integration record (Ocean's logs, metrics, heartbeat)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from shoal.catalog.api.deps import Caller, CatalogRoute, Services, ServicesDep, raw_tail
from shoal.catalog.auth import Action, authorize
from shoal.catalog.notify import Event
from shoal.errors import InvalidInputError

router = APIRouter(prefix="/v1/ingest", tags=["Ingest"], route_class=CatalogRoute)
log = logging.getLogger("shoal.ingest")

AnyBody = Annotated[dict[str, Any], Body()]


def _list(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key, [])
    if not isinstance(value, list):
        message = f"{key} must be a list"
        raise InvalidInputError(message)
    return value


@router.post("/{identifier}/logs", summary="Integration log lines")
async def logs(identifier: str, caller: Caller, body: AnyBody) -> dict[str, Any]:
    authorize(caller, Action.WRITE_INTEGRATION, identifier)
    for line in _list(body, "logs")[:1000]:
        if isinstance(line, dict):
            log.info("[%s] %s", identifier, str(line.get("message", ""))[:2000])
    return {"ok": True}


@router.post("/{identifier}/metrics/syncMetrics", summary="Resync metrics batch")
async def sync_metrics(
    identifier: str, caller: Caller, services: ServicesDep, body: AnyBody
) -> dict[str, Any]:
    authorize(caller, Action.WRITE_INTEGRATION, identifier)
    events = [
        (event["eventId"], str(event.get("kindIdentifier", event.get("kind", "?"))), event)
        for event in _list(body, "syncKindsMetrics")
        if isinstance(event, dict) and isinstance(event.get("eventId"), str)
    ]
    runs = await services.store.integrations.record_kind_metrics(identifier, events)
    await _publish_runs(services, identifier, runs)
    return {"ok": True}


@router.put(
    "/{identifier}/metrics/syncMetrics/resync/{event_id}/kind/{kind:path}", summary="Kind metrics"
)
async def kind_metrics(
    identifier: str,
    event_id: str,
    request: Request,
    caller: Caller,
    services: ServicesDep,
    body: AnyBody,
) -> dict[str, Any]:
    authorize(caller, Action.WRITE_INTEGRATION, identifier)
    kind = raw_tail(request, 9)
    event = body.get("syncKindMetrics", body)
    if isinstance(event, dict):
        runs = await services.store.integrations.record_kind_metrics(
            identifier, [(event_id, kind, event)]
        )
        await _publish_runs(services, identifier, runs)
    return {"ok": True}


@router.post("/{identifier}/metrics/heartbeat", summary="Resync heartbeat")
async def heartbeat(
    identifier: str, caller: Caller, services: ServicesDep, body: AnyBody
) -> dict[str, Any]:
    """Keeps Ocean's running resync from being marked failed by the stale-run sweeper."""
    authorize(caller, Action.WRITE_INTEGRATION, identifier)
    event_id = body.get("eventId")
    if isinstance(event_id, str) and event_id:
        await services.store.integrations.heartbeat_ocean_run(identifier, event_id)
    return {"ok": True}


async def _publish_runs(services: Services, identifier: str, runs: list[dict[str, Any]]) -> None:
    """Ocean runs the metrics updated go to the UI's live history like reported runs."""
    for run in runs:
        await services.hub.publish(Event(identifier, "run", None, run))


@router.post("/{identifier}/lake/{rest:path}", summary="Raw data (accepted, not stored)")
async def lake(identifier: str, rest: str, caller: Caller) -> dict[str, Any]:
    authorize(caller, Action.WRITE_INTEGRATION, identifier)
    return {"ok": True}
