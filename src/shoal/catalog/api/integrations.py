"""Integration routes: Port's record, config, resync state and requests, plus Shoal's run
history and the server-sent-event stream that delivers triggers at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from starlette.responses import StreamingResponse

from shoal.catalog.api.deps import Caller, CatalogRoute, Services, ServicesDep, raw_tail
from shoal.catalog.api.responses import JSONResponse
from shoal.catalog.auth import Action, Principal, authorize
from shoal.catalog.integrations import ResyncRequest, pending_request
from shoal.catalog.notify import Event
from shoal.clock import to_iso
from shoal.errors import ForbiddenError, InvalidInputError, NotFoundError

router = APIRouter(prefix="/v1/integration", tags=["Integrations"], route_class=CatalogRoute)

KEEPALIVE_SECONDS = 15.0

AnyBody = Annotated[dict[str, Any], Body(examples=[{}])]


async def announce(services: Services, request: ResyncRequest) -> None:
    services.metrics.resync_requests.labels(request.source).inc()
    services.webhooks.enqueue(request)
    await services.hub.publish(
        Event(request.integration, "resync-request", request.id, request.to_json())
    )


@router.get("", summary="List integrations (Shoal)")
async def list_integrations(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    authorize(caller, Action.READ)
    records = await services.store.integrations.list()
    if caller.integration is not None:
        records = [r for r in records if r["identifier"] == caller.integration]
    return {"ok": True, "integrations": records}


@router.get("/provision-enabled", summary="Integration types Port provisions (none here)")
async def provision_enabled(_caller: Caller) -> dict[str, Any]:
    return {"ok": True, "integrations": []}


@router.post("", status_code=201, summary="Create an integration")
async def create_integration(caller: Caller, services: ServicesDep, body: AnyBody) -> JSONResponse:
    identifier = body.get("installationId", body.get("identifier"))
    authorize(caller, Action.WRITE_INTEGRATION, identifier if isinstance(identifier, str) else None)
    if caller.integration is not None and identifier != caller.integration:
        message = f"this credential may only create integration {caller.integration!r}"
        raise ForbiddenError(message)
    record, request = await services.store.integrations.create(body, actor=caller.client_id)
    await announce(services, request)
    return JSONResponse({"ok": True, "integration": record}, status_code=201)


@router.get("/{identifier}", summary="Get an integration")
async def get_integration(identifier: str, caller: Caller, services: ServicesDep) -> dict[str, Any]:
    authorize(caller, Action.READ, identifier)
    return {"ok": True, "integration": await services.store.integrations.get(identifier)}


@router.patch(
    "/{identifier}",
    summary="Update an integration (triggers a resync)",
    description=(
        "Merges the body into the integration and records a resync request, exactly as Port "
        "does: send `{}` to trigger a resync without changing anything. The running "
        "integration receives the request at once (server-sent events) or at its next poll."
    ),
)
async def patch_integration(
    identifier: str, caller: Caller, services: ServicesDep, body: AnyBody
) -> dict[str, Any]:
    changes = {k: v for k, v in body.items() if k != "version"}
    authorize(caller, Action.WRITE_INTEGRATION if changes else Action.TRIGGER, identifier)
    if not caller.can(Action.WRITE_INTEGRATION):
        body = {}  # a member may trigger a resync, not change the record (not even `version`)
    record, request = await services.store.integrations.patch(
        identifier, body, source="api", actor=caller.client_id
    )
    await announce(services, request)
    return {"ok": True, "integration": record}


@router.post("/{identifier}/resync", status_code=201, summary="Trigger a resync (Shoal)")
async def trigger_resync(
    identifier: str,
    caller: Caller,
    services: ServicesDep,
    body: Annotated[dict[str, Any], Body(examples=[{"source": "cli"}])] | None = None,
) -> JSONResponse:
    authorize(caller, Action.TRIGGER, identifier)
    source = (body or {}).get("source", "api")
    if source not in ("api", "cli", "ui", "webhook", "schedule"):
        message = "source must be one of api, cli, ui, webhook, schedule"
        raise InvalidInputError(message)
    request = await services.store.integrations.request_resync(
        identifier, source=source, actor=caller.client_id
    )
    await announce(services, request)
    return JSONResponse({"ok": True, "request": request.to_json()}, status_code=201)


@router.delete("/{identifier}", summary="Delete an integration (its entities stay)")
async def delete_integration(
    identifier: str, caller: Caller, services: ServicesDep
) -> dict[str, Any]:
    authorize(caller, Action.MANAGE)
    await services.store.integrations.delete(identifier)
    return {"ok": True}


@router.patch("/{identifier}/config", summary="Replace the mapping config")
async def patch_config(
    identifier: str,
    caller: Caller,
    services: ServicesDep,
    body: AnyBody,
    x_skip_resync: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    authorize(caller, Action.WRITE_INTEGRATION, identifier)
    config = body.get("config")
    if not isinstance(config, dict):
        message = 'the body must be {"config": {...}}'
        raise InvalidInputError(message)
    record, request = await services.store.integrations.replace_config(
        identifier, config, actor=caller.client_id, trigger=(x_skip_resync or "").lower() != "true"
    )
    if request is not None:
        await announce(services, request)
    return {"ok": True, "integration": record}


@router.patch("/{identifier}/resync-state", summary="Report resync state")
async def patch_resync_state(
    identifier: str, caller: Caller, services: ServicesDep, body: AnyBody
) -> dict[str, Any]:
    authorize(caller, Action.WRITE_INTEGRATION, identifier)
    record, runs = await services.store.integrations.report_resync_state(
        identifier, body, actor=caller.client_id
    )
    await services.hub.publish(Event(identifier, "state", None, record["resyncState"]))
    for run in runs:  # Ocean's runs: the catalog keeps their history from the state it reports
        await services.hub.publish(Event(identifier, "run", None, run))
    return {"ok": True, "integration": record}


@router.get("/{identifier}/resync-request", summary="The pending resync request, if any")
async def get_resync_request(
    identifier: str, caller: Caller, services: ServicesDep
) -> dict[str, Any]:
    authorize(caller, Action.READ, identifier)
    record, latest = await services.store.integrations.latest_request(identifier)
    pending = pending_request(latest, record)
    return {"ok": True, "request": None if pending is None else pending.to_json()}


@router.get(
    "/{identifier}/events",
    summary="Stream resync requests and run updates (server-sent events)",
    response_class=StreamingResponse,
)
async def stream_events(
    identifier: str,
    caller: Caller,
    services: ServicesDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """`resync-request` events carry the request id as the event id; reconnect with
    `Last-Event-ID` and every request recorded meanwhile is replayed first."""
    authorize(caller, Action.READ, identifier)
    await services.store.integrations.get(identifier)  # 404 before the stream starts
    return StreamingResponse(
        _event_stream(services, identifier, last_event_id, caller.session),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _event_stream(
    services: Services, identifier: str, last_event_id: str | None, session: str | None
) -> AsyncIterator[bytes]:
    """The stream of ``identifier``'s events; one opened by a web UI session ends once that
    session is signed out of (checked every :data:`KEEPALIVE_SECONDS`)."""
    loop = asyncio.get_running_loop()
    checked = loop.time()
    async with services.hub.subscribe(identifier) as queue:
        # subscribed first, then replay: a request recorded in between is seen (twice at worst,
        # and clients ignore ids they have already handled)
        missed = await services.store.integrations.requests_after(identifier, last_event_id)
        _, latest = await services.store.integrations.latest_request(identifier)
        ready = Event(
            identifier,
            "ready",
            None,
            {
                "latestRequest": latest.id if latest else None,
                "latestRequestAt": to_iso(latest.created_at) if latest else None,
                "latestRequestSource": latest.source if latest else None,
            },
        )
        yield ready.encode()
        for request in missed:
            yield Event(identifier, "resync-request", request.id, request.to_json()).encode()
        while True:
            if session is not None and loop.time() - checked >= KEEPALIVE_SECONDS:
                if await services.store.credentials.session_ended(session):
                    return
                checked = loop.time()
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if event.partial:
                event = await _completed(services, event)
            yield event.encode()


async def _completed(services: Services, event: Event) -> Event:
    """A run event another replica had to cut short, whole again from the store (as it is now:
    as new as the event, or newer)."""
    run_id = event.data.get("id")
    if event.name != "run" or not isinstance(run_id, str):
        return event
    try:
        run = await services.store.integrations.get_run(event.integration, run_id)
    except NotFoundError:
        return event
    return Event(event.integration, event.name, event.id, run)


# --- run history (Shoal) ---------------------------------------------------------------------


@router.get("/{identifier}/runs", summary="Resync history, newest first")
async def list_runs(
    identifier: str,
    caller: Caller,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    authorize(caller, Action.READ, identifier)
    return {
        "ok": True,
        "runs": await services.store.integrations.list_runs(identifier, limit=limit),
    }


@router.get("/{identifier}/runs/{run_id}", summary="One resync run")
async def get_run(
    identifier: str, run_id: str, caller: Caller, services: ServicesDep
) -> dict[str, Any]:
    authorize(caller, Action.READ, identifier)
    return {"ok": True, "run": await services.store.integrations.get_run(identifier, run_id)}


@router.put("/{identifier}/runs/{run_id}", summary="Report a resync run (integrations)")
async def report_run(
    identifier: str, run_id: str, caller: Caller, services: ServicesDep, body: AnyBody
) -> dict[str, Any]:
    authorize(caller, Action.WRITE_INTEGRATION, identifier)
    run = await services.store.integrations.report_run(identifier, run_id, body)
    await services.hub.publish(Event(identifier, "run", None, run))
    return {"ok": True, "run": run}


@router.post("/{identifier}/runs/{run_id}/heartbeat", summary="Keep a running resync alive")
async def heartbeat_run(
    identifier: str, run_id: str, caller: Caller, services: ServicesDep
) -> dict[str, Any]:
    authorize(caller, Action.WRITE_INTEGRATION, identifier)
    await services.store.integrations.heartbeat_run(identifier, run_id)
    return {"ok": True}


@router.post("/{identifier}/kinds/{kind:path}/examples", summary="Raw examples of a kind")
async def kind_examples(
    identifier: str, request: Request, caller: Caller, services: ServicesDep, body: AnyBody
) -> dict[str, Any]:
    authorize(caller, Action.WRITE_INTEGRATION, identifier)
    kind = raw_tail(request, 5, drop_last=1)
    await services.store.integrations.record_examples(identifier, kind, body.get("examples", []))
    return {"ok": True}


@router.get("/{identifier}/kinds/{kind:path}/examples", summary="Raw examples of a kind (Shoal)")
async def read_kind_examples(
    identifier: str, request: Request, caller: Caller, services: ServicesDep
) -> dict[str, Any]:
    authorize(caller, Action.READ, identifier)
    kind = raw_tail(request, 5, drop_last=1)
    return {"ok": True, "examples": await services.store.integrations.examples(identifier, kind)}


@router.get("/{identifier}/kind-metrics", summary="Per-kind progress reported by Ocean (Shoal)")
async def kind_metrics(identifier: str, caller: Caller, services: ServicesDep) -> dict[str, Any]:
    authorize(caller, Action.READ, identifier)
    return {"ok": True, "kinds": await services.store.integrations.kind_metrics(identifier)}


def ensure_own(principal: Principal, identifier: str) -> None:
    authorize(principal, Action.READ, identifier)


# --- run lease (Shoal) -------------------------------------------------------------------------


def _lease_request(body: dict[str, Any]) -> tuple[str, float]:
    holder, ttl = body.get("holder"), body.get("ttlSeconds", 15)
    if not isinstance(holder, str) or not 0 < len(holder) <= 200:
        message = "holder must be a string of 1-200 characters naming the process"
        raise InvalidInputError(message)
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0.1 <= ttl <= 3600:
        message = "ttlSeconds must be a number from 0.1 to 3600"
        raise InvalidInputError(message)
    return holder, float(ttl)


@router.post("/{identifier}/lease", summary="Take or renew the run lease (Shoal)")
async def acquire_lease(
    identifier: str, caller: Caller, services: ServicesDep, body: AnyBody
) -> JSONResponse:
    """One process at a time runs an integration's resyncs: it holds this lease and renews it.
    409 `lease_held` names the live holder; the lease is free again once it expires."""
    authorize(caller, Action.WRITE_INTEGRATION, identifier)
    holder, ttl = _lease_request(body)
    lease = await services.store.leases.acquire(identifier, holder, int(ttl * 1_000_000))
    shown = {
        "integration": identifier,
        "holder": lease.holder,
        "expiresAt": to_iso(lease.expires_at),
    }
    if not lease.granted:
        message = (
            f"integration {identifier!r} is run by {lease.holder!r} until {shown['expiresAt']}"
        )
        return JSONResponse(
            {"ok": False, "error": "lease_held", "message": message, "lease": shown}, 409
        )
    return JSONResponse({"ok": True, "lease": shown})


@router.delete("/{identifier}/lease", summary="Give the run lease up (Shoal)")
async def release_lease(
    identifier: str,
    caller: Caller,
    services: ServicesDep,
    holder: Annotated[str, Query(max_length=200)],
) -> dict[str, Any]:
    authorize(caller, Action.WRITE_INTEGRATION, identifier)
    return {"ok": True, "released": await services.store.leases.release(identifier, holder)}
