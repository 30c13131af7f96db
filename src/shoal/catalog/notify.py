"""Event fan-out: resync requests and run updates to server-sent-event subscribers.

In one process, :class:`EventHub` hands each event to every subscriber's queue. With PostgreSQL,
events also cross replicas through ``LISTEN/NOTIFY``: a trigger recorded by one catalog process
reaches an integration connected to another within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Event", "EventHub"]

log = logging.getLogger(__name__)

CHANNEL = "shoal_events"
_NOTIFY_LIMIT = 7900  # PostgreSQL's NOTIFY payload limit is 8000 bytes
_QUEUE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Event:
    integration: str
    name: str  # "resync-request" | "run" | "state"
    id: str | None
    data: dict[str, Any]
    partial: bool = False
    """From another replica, cut to ``id``, ``status`` and ``integration`` (NOTIFY carries at
    most 8000 bytes): a subscriber reads the rest from the store."""

    def encode(self) -> bytes:
        """The event in the ``text/event-stream`` wire format."""
        lines = []
        if self.id:
            lines.append(f"id: {self.id}")
        lines.append(f"event: {self.name}")
        lines.append(f"data: {orjson.dumps(self.data).decode()}")
        return ("\n".join(lines) + "\n\n").encode()


class EventHub:
    def __init__(self, postgres_dsn: str | None = None) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Event]]] = {}
        self._all: set[asyncio.Queue[Event]] = set()
        self._dsn = postgres_dsn
        self._origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._connection: Any = None
        self._ready = asyncio.Event()
        self._notify_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def subscribe(self, integration: str | None) -> AsyncIterator[asyncio.Queue[Event]]:
        """A queue receiving the events of ``integration`` (or of all integrations for None)."""
        queue: asyncio.Queue[Event] = asyncio.Queue(_QUEUE_SIZE)
        group = (
            self._all if integration is None else self._subscribers.setdefault(integration, set())
        )
        group.add(queue)
        try:
            yield queue
        finally:
            group.discard(queue)

    def _deliver(self, event: Event) -> None:
        for queue in (*self._subscribers.get(event.integration, ()), *self._all):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stuck subscriber must not block the others
                log.warning("dropping event for a slow subscriber of %s", event.integration)

    async def publish(self, event: Event) -> None:
        self._deliver(event)
        if self._connection is None:
            return
        payload: dict[str, Any] = {
            "origin": self._origin,
            "integration": event.integration,
            "name": event.name,
            "id": event.id,
            "data": event.data,
        }
        encoded = orjson.dumps(payload)
        if len(encoded) > _NOTIFY_LIMIT:  # bytes: "é" is two of them
            payload["data"] = {k: event.data.get(k) for k in ("id", "status", "integration")}
            payload["partial"] = True
            encoded = orjson.dumps(payload)
        try:
            # one asyncpg connection runs one statement at a time: publishers take turns
            async with self._notify_lock:
                await self._connection.execute(
                    "SELECT pg_notify($1, $2)", CHANNEL, encoded.decode()
                )
        except Exception:
            log.exception("could not NOTIFY other catalog replicas")

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        message = orjson.loads(payload)
        if message.get("origin") == self._origin:
            return
        self._deliver(
            Event(
                message["integration"],
                message["name"],
                message["id"],
                message["data"],
                partial=bool(message.get("partial")),
            )
        )

    async def run(self) -> None:
        """Listen for other replicas' events until cancelled (PostgreSQL only)."""
        if self._dsn is None:
            self._ready.set()
            await asyncio.Event().wait()
            return
        import asyncpg

        while True:
            try:
                await self._listen(asyncpg)
            except Exception:  # lost, refused, or a driver error: listening must go on
                log.exception("LISTEN connection lost; reconnecting")
                await asyncio.sleep(1)
            finally:
                connection, self._connection = self._connection, None
                if connection is not None and not connection.is_closed():
                    await connection.close()

    async def _listen(self, asyncpg: Any) -> None:
        """Hold one LISTEN connection until it is lost."""
        lost = asyncio.Event()
        self._connection = await asyncpg.connect(self._dsn)
        self._connection.add_termination_listener(lambda _conn: lost.set())
        await self._connection.add_listener(CHANNEL, self._on_notify)
        self._ready.set()
        await lost.wait()

    async def ready(self) -> None:
        await self._ready.wait()
