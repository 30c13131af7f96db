"""Webhook delivery of resync requests (Ocean's WEBHOOK listener and Shoal's own).

An integration registered with ``changelogDestination: {"type": "WEBHOOK", "url": ...}`` gets
each resync request POSTed to that URL. Ocean handles the POST by running the whole resync inside
the request, so a delivery counts as done once the request is sent: a read timeout is success.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from shoal.catalog.integrations import ResyncRequest
from shoal.catalog.store import Store

__all__ = ["WebhookDispatcher"]

log = logging.getLogger("shoal.webhooks")

_ATTEMPTS = 4
_QUEUE_SIZE = 10_000
_NOT_DELIVERED = frozenset({502, 503, 504})
"""Statuses of a proxy or a server that is not up yet: the integration never saw the request."""


class WebhookDispatcher:
    def __init__(self, store: Store, *, timeout: float = 5.0, concurrency: int = 16) -> None:
        self._store = store
        self._timeout = timeout
        self._queue: asyncio.Queue[ResyncRequest] = asyncio.Queue(_QUEUE_SIZE)
        self._slots = asyncio.Semaphore(concurrency)
        self.delivered = 0

    def enqueue(self, request: ResyncRequest) -> None:
        if request.source == "create":  # the integration is starting; it resyncs on its own
            return
        try:
            self._queue.put_nowait(request)
        except asyncio.QueueFull:
            log.error("webhook queue full; dropping resync request %s", request.id)

    async def run(self) -> None:
        """Deliver queued requests until cancelled."""
        timeout = httpx.Timeout(self._timeout, connect=self._timeout)
        async with httpx.AsyncClient(timeout=timeout) as client, asyncio.TaskGroup() as group:
            while True:
                request = await self._queue.get()
                await self._slots.acquire()
                group.create_task(self._deliver(client, request))

    async def _deliver(self, client: httpx.AsyncClient, request: ResyncRequest) -> None:
        try:
            record = await self._store.integrations.get(request.integration)
            destination = record.get("changelogDestination") or {}
            url = destination.get("url") if isinstance(destination, dict) else None
            if destination.get("type") != "WEBHOOK" or not isinstance(url, str):
                return
            shown = _shown(url)
            for attempt in range(_ATTEMPTS):
                try:
                    response = await client.post(url, json=request.to_json())
                except httpx.ReadTimeout:
                    break  # sent; the receiver is busy running the resync
                except httpx.TransportError as exc:
                    log.warning("webhook %s for %s failed: %s", shown, request.integration, exc)
                else:
                    if response.status_code not in _NOT_DELIVERED:
                        # Ocean runs the resync inside the request: a 500 there is a resync that
                        # failed or was aborted by a newer one, and re-sending would abort again
                        if response.status_code >= 400:
                            log.warning("webhook %s answered %s", shown, response.status_code)
                        break
                    log.warning("webhook %s answered %s", shown, response.status_code)
                await asyncio.sleep(0.5 * 2**attempt)
            else:
                log.error("gave up delivering resync request %s to %s", request.id, shown)
                return
            self.delivered += 1
        except Exception:
            log.exception("webhook delivery of %s failed", request.id)
        finally:
            self._slots.release()


def _shown(url: str) -> str:
    """A webhook URL as logs show it: without a user, password or query (tokens go there)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<an invalid URL>"
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))
