"""Poll delivery (Ocean-compatible): ``GET /resync-request`` every ``interval`` seconds."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from shoal.clock import parse_wire_time
from shoal.errors import CatalogError, CatalogUnavailableError
from shoal.sync.catalog_client import CatalogClient
from shoal.sync.supervisor import Supervisor, Trigger

__all__ = ["poll_requests"]

log = logging.getLogger("shoal.sync")


async def poll_requests(
    client: CatalogClient,
    identifier: str,
    supervisor: Supervisor,
    interval: float,
    started_at: datetime,
) -> None:
    """Request a resync for every new pending request, forever.

    A request older than the start of our own latest run (or of this process) was already
    served, so it is ignored: a restart does not replay an old request. A request is told from
    the last one by its id and its ``updatedAt`` (a catalog may bump one request rather than
    record a new one, as Ocean expects).
    """
    handled: set[tuple[str, str]] = set()
    while True:
        await asyncio.sleep(interval)
        try:
            request = await client.get_resync_request(identifier)
        except (CatalogError, CatalogUnavailableError) as exc:
            log.warning("polling resync requests of %s failed: %s", identifier, exc)
            continue
        if not request or not isinstance(request.get("id"), str):
            continue
        key = (request["id"], str(request.get("updatedAt")))
        if key in handled:
            continue
        handled.add(key)
        created = parse_wire_time(request.get("updatedAt"))
        if created is None:
            continue
        last = supervisor.last_started.started_at if supervisor.last_started else started_at
        if created > last:
            supervisor.request(Trigger(str(request.get("source", "api")), request["id"]))
