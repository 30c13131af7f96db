"""Push delivery: the catalog's server-sent-event stream, with reconnects that lose nothing."""

from __future__ import annotations

import asyncio
import logging
import random

from shoal.errors import CatalogError, CatalogUnavailableError
from shoal.sync.catalog_client import CatalogClient
from shoal.sync.supervisor import Supervisor, Trigger

__all__ = ["listen_for_events"]

log = logging.getLogger("shoal.sync")

_BACKOFF_START, _BACKOFF_CAP = 0.2, 30.0


async def listen_for_events(client: CatalogClient, identifier: str, supervisor: Supervisor) -> None:
    """Turn ``resync-request`` events into resync requests, forever.

    On reconnect the stream resumes from the last event seen (``Last-Event-ID``), so requests
    recorded while disconnected are delivered; ids already handled are ignored.
    """
    last_id: str | None = None
    handled: set[str] = set()
    backoff = _BACKOFF_START
    while True:
        try:
            async with client.iter_events(identifier, last_event_id=last_id) as stream:
                async for event in stream:
                    backoff = _BACKOFF_START
                    if event.event == "ready":
                        latest = (event.json() or {}).get("latestRequest")
                        if last_id is None and isinstance(latest, str):
                            last_id = latest  # earlier requests were served by the start resync
                            handled.add(latest)
                        continue
                    if event.event != "resync-request" or event.id is None:
                        continue
                    last_id = event.id
                    if event.id in handled:
                        continue
                    handled.add(event.id)
                    source = (event.json() or {}).get("source", "api")
                    supervisor.request(Trigger(str(source), event.id))
        except (CatalogUnavailableError, CatalogError, ValueError) as exc:
            log.warning(
                "event stream of %s lost (%s); reconnecting in %.1f s", identifier, exc, backoff
            )
        await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
        backoff = min(backoff * 2, _BACKOFF_CAP)
