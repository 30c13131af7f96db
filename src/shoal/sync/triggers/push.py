"""Push delivery: the catalog's server-sent-event stream, with reconnects that lose nothing."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from shoal.clock import parse_wire_time
from shoal.errors import CatalogError, CatalogUnavailableError, NotFoundError
from shoal.sync.catalog_client import CatalogClient
from shoal.sync.supervisor import Supervisor, Trigger

__all__ = ["listen_for_events"]

log = logging.getLogger("shoal.sync")

_BACKOFF_START, _BACKOFF_CAP = 0.2, 30.0
_HEALTHY_SECONDS = 10.0
"""A stream that stayed up this long starts the backoff over when it is lost; one that ends
sooner (a proxy closing it, a catalog answering and hanging up) keeps backing off."""


async def listen_for_events(
    client: CatalogClient,
    identifier: str,
    supervisor: Supervisor,
    *,
    served_before: datetime | None = None,
    fallback: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Turn ``resync-request`` events into resync requests, forever.

    On reconnect the stream resumes from the last event seen (``Last-Event-ID``), so requests
    recorded while disconnected are delivered; ids already handled are ignored. On the first
    connection, the latest request is served unless a resync started after it (or is about to),
    or it is older than ``served_before`` (the last resync start the catalog recorded). A catalog
    without an event stream (Port) hands over to ``fallback`` (polling).
    """
    last_id: str | None = None
    handled: set[str] = set()
    backoff = _BACKOFF_START
    loop = asyncio.get_running_loop()
    while True:
        connected: float | None = None
        try:
            async with client.iter_events(identifier, last_event_id=last_id) as stream:
                connected = loop.time()
                async for event in stream:
                    if event.event == "ready":
                        if last_id is None:
                            last_id = _first_ready(event.json() or {}, supervisor, served_before)
                            if last_id is not None:
                                handled.add(last_id)
                        continue
                    if event.event != "resync-request" or event.id is None:
                        continue
                    last_id = event.id
                    if event.id in handled:
                        continue
                    handled.add(event.id)
                    source = (event.json() or {}).get("source", "api")
                    supervisor.request(Trigger(str(source), event.id))
        except NotFoundError:
            if fallback is None:
                raise
            log.warning("the catalog has no event stream; polling for resync requests instead")
            await fallback()
            return
        except (CatalogUnavailableError, CatalogError, ValueError) as exc:
            log.warning(
                "event stream of %s lost (%s); reconnecting in %.1f s", identifier, exc, backoff
            )
        if connected is not None and loop.time() - connected >= _HEALTHY_SECONDS:
            backoff = _BACKOFF_START  # it was up a while: reconnect soon, as from the start
        await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
        backoff = min(backoff * 2, _BACKOFF_CAP)


def _first_ready(data: Any, supervisor: Supervisor, served_before: datetime | None) -> str | None:
    """Handle the latest request reported when the stream first connects; returns its id."""
    latest, at = data.get("latestRequest"), data.get("latestRequestAt")
    if not isinstance(latest, str):
        return None
    created = parse_wire_time(at)
    if created is None:
        return latest
    started = supervisor.last_started.started_at if supervisor.last_started else None
    served = (
        supervisor.starting  # the run about to start reads what the request changed
        or (started is not None and started >= created)  # the current run included
        or (served_before is not None and served_before >= created)
    )
    if not served:
        source = data.get("latestRequestSource") or "api"
        supervisor.request(Trigger(str(source), latest))
    return latest
