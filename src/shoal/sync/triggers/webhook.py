"""Webhook delivery (Ocean-compatible): the catalog POSTs to the integration's URL."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shoal.embedded import EmbeddedServer
from shoal.sync.supervisor import Supervisor, Trigger

__all__ = ["serve_webhook", "webhook_app"]

log = logging.getLogger("shoal.sync")


def webhook_app(supervisor: Supervisor) -> Starlette:
    """``POST /resync`` with the resync request as JSON body triggers a resync.

    Like Ocean's WEBHOOK listener it takes no credential: bind it to an address only the catalog
    reaches (the default is loopback).
    """

    async def resync(request: Request) -> JSONResponse:
        try:
            body: Any = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            return JSONResponse(
                {"ok": False, "error": "invalid_json", "message": "body is not JSON"}, 400
            )
        request_id = body.get("id") if isinstance(body, dict) else None
        supervisor.request(Trigger("webhook", request_id if isinstance(request_id, str) else None))
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/resync", resync, methods=["POST"])])


async def serve_webhook(supervisor: Supervisor, host: str, port: int) -> None:
    """Serve the webhook endpoint until cancelled."""
    config = uvicorn.Config(webhook_app(supervisor), host=host, port=port, log_level="warning")
    server = EmbeddedServer(config)
    async with asyncio.TaskGroup() as group:
        serving = group.create_task(server.serve(), name="webhook-server")
        try:
            await asyncio.wait({serving})
        finally:  # on cancellation, shut down cleanly (closing the listening socket) first
            server.should_exit = True
            await asyncio.wait({serving})
