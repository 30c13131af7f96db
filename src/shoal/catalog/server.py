"""Run the catalog inside the current event loop (tests, the demo and the benchmark use it)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import uvicorn

from shoal.catalog.app import create_app
from shoal.catalog.settings import CatalogSettings
from shoal.embedded import EmbeddedServer

__all__ = ["GRACEFUL_SHUTDOWN_SECONDS", "RunningCatalog", "free_port", "running_catalog"]

GRACEFUL_SHUTDOWN_SECONDS = 2
"""Event streams never end on their own: after this, open connections are closed at shutdown."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class RunningCatalog:
    url: str
    settings: CatalogSettings


@contextlib.asynccontextmanager
async def running_catalog(settings: CatalogSettings) -> AsyncIterator[RunningCatalog]:
    """Serve the catalog on loopback until the block exits. Port 0 picks a free port."""
    if settings.port == 0:
        settings = replace(settings, port=free_port(settings.host))
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = EmbeddedServer(config)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(server.serve(), name="catalog-server")
        while not server.started:
            if task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            message = "the catalog server failed to start"
            raise RuntimeError(message)
        try:
            yield RunningCatalog(f"http://{settings.host}:{settings.port}", settings)
        finally:  # a clean shutdown even when the block failed: close sockets, run the lifespan
            server.should_exit = True
            await asyncio.wait({task})
