"""The catalog application: app factory and lifespan (store, event hub, stale-run sweeper,
webhooks, WAL checkpoints, relation merges)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from shoal import __version__
from shoal.catalog.api import auth, blueprints, entities, ingest, integrations, organization
from shoal.catalog.api.deps import Metrics, Services
from shoal.catalog.api.errors import install_error_handlers
from shoal.catalog.api.responses import JSONResponse
from shoal.catalog.notify import Event, EventHub
from shoal.catalog.settings import CatalogSettings
from shoal.catalog.store import Store, open_store
from shoal.catalog.ui import router as ui_router
from shoal.catalog.webhooks import WebhookDispatcher

__all__ = ["create_app", "ensure_admin_credential"]

log = logging.getLogger("shoal.catalog")

ADMIN_CREDENTIALS_FILE = "admin-credentials.json"


async def ensure_admin_credential(store: Store, data_dir: Path) -> Path | None:
    """On first start, create an admin credential and store it in a 0600 file; if the file
    cannot be written, the credential is withdrawn (the next start creates one again) rather
    than left for nobody to know."""
    if await store.credentials.count():
        return None  # the usual start: no scrypt hash for nothing
    created = await store.credentials.create_first_admin("created on first start")
    if created is None:  # another replica, starting at the same time, made it
        return None
    client_id, secret = created
    try:
        return await asyncio.to_thread(_write_credential_file, data_dir, client_id, secret)
    except BaseException:
        await asyncio.shield(store.credentials.delete(client_id))
        raise


def _write_credential_file(data_dir: Path, client_id: str, secret: str) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ADMIN_CREDENTIALS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        payload = {"clientId": client_id, "clientSecret": secret}
        handle.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    os.chmod(path, 0o600)
    return path


async def _sweep_stale_runs(services: Services) -> None:
    """Mark runs whose integration stopped heartbeating as failed, forever (until cancelled)."""
    timeout = services.settings.run_heartbeat_timeout
    interval = max(0.2, min(timeout / 4, 15.0))
    while True:
        await asyncio.sleep(interval)
        try:
            failed = await services.store.integrations.fail_stale_runs(int(timeout * 1_000_000))
        except Exception:  # a transient database error must not stop the sweeper
            log.exception("could not sweep stale runs; trying again in %.1f s", interval)
            continue
        for run in failed:
            services.metrics.stale_runs.inc()
            log.warning(
                "run %s of %s failed: %s", run["id"], run["integration"], run["failureReason"]
            )
            await services.hub.publish(Event(run["integration"], "run", None, run))


def _postgres_dsn(url: str) -> str | None:
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return None


def create_app(
    settings: CatalogSettings, *, announce: Callable[[str], None] | None = None
) -> FastAPI:
    """The catalog ASGI app. The store opens (and migrates) in the lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await open_store(
            settings.resolved_database_url, base_url=settings.resolved_public_url
        )
        try:
            created = await ensure_admin_credential(store, settings.data_dir)
            if created is not None and announce is not None:
                announce(
                    f"Created an admin credential; it is stored in {created.resolve()} (mode 0600)"
                )
            hub = EventHub(_postgres_dsn(settings.resolved_database_url))
            services = Services(
                settings,
                store,
                hub,
                await store.credentials.signing_key(),
                Metrics(),
                WebhookDispatcher(store),
            )
            app.state.services = services
            async with asyncio.TaskGroup() as group:
                background = [
                    group.create_task(hub.run(), name="event-hub"),
                    group.create_task(_sweep_stale_runs(services), name="stale-run-sweeper"),
                    group.create_task(services.webhooks.run(), name="webhooks"),
                    group.create_task(store.database.checkpoint_forever(), name="checkpoints"),
                    group.create_task(store.relations.merge_when_idle(), name="relation-merges"),
                ]
                await hub.ready()
                try:
                    yield
                finally:
                    for task in background:
                        task.cancel()
        finally:
            await store.close()

    app = FastAPI(
        title="Shoal catalog API",
        version=__version__,
        description=(
            "Port-compatible catalog API. Get a token with **POST /v1/auth/access_token**, press "
            "**Authorize** and paste it, then e.g. **PATCH /v1/integration/{identifier}** with "
            "`{}` to trigger a resync."
        ),
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=JSONResponse,
        redirect_slashes=False,  # a stray slash gets a JSON 404, never a bodiless 307
    )
    install_error_handlers(app)
    for module in (auth, organization, integrations, ingest, blueprints, entities):
        app.include_router(module.router)
    app.include_router(ui_router)  # the web UI: /ui/..., and / redirects to it

    assets = Path(swagger_ui_bundle.swagger_ui_path)
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Shoal API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True, "tryItOutEnabled": True},
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        services: Services = request.app.state.services
        return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        services: Services | None = getattr(request.app.state, "services", None)
        if services is not None:
            route = _route_name(request)
            services.metrics.requests.labels(request.method, route, str(response.status_code)).inc()
            services.metrics.latency.labels(route).observe(time.perf_counter() - started)
        return response

    return app


def _route_name(request: Request) -> str:
    """The route template (``/v1/integration/{identifier}``): bounded label cardinality."""
    route = request.scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "unmatched"
