"""Helpers shared by the catalog API tests (not collected: no ``test_`` prefix)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from shoal.catalog.auth import Role
from shoal.catalog.server import RunningCatalog
from shoal.catalog.store import Store, open_store
from tests.conftest import token_for

OCEAN_BODY: dict[str, Any] = {
    "installationAppType": "testint",
    "version": "0.1.0",
    "changelogDestination": {},
    "config": {
        "deleteDependentEntities": True,
        "createMissingRelatedEntities": True,
        "enableMergeEntity": True,
        "entityDeletionThreshold": 0.9,
        "resources": [],
    },
    "actionsProcessingEnabled": False,
    "incrementalSyncEnabled": False,
    "createPortResourcesOrigin": "Default",
}


def ocean_agent(identifier: str, integration_type: str = "testint", version: str = "0.1.0") -> str:
    """The User-Agent Ocean sends on entity writes; the catalog stamps it as datasource."""
    return f"port-ocean/{integration_type}/{version}/{identifier}/exporter"


def iso(moment: datetime | None = None, **delta: float) -> str:
    """An ISO-8601 timestamp with a zone, as Ocean sends them (``isoformat()``)."""
    return ((moment or datetime.now(UTC)) + timedelta(**delta)).isoformat()


def parse_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None, value
    return parsed


async def create_integration(client: httpx.AsyncClient, identifier: str, **extra: Any) -> Any:
    response = await client.post(
        "/v1/integration", json={**OCEAN_BODY, "installationId": identifier, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()["integration"]


async def create_blueprint(client: httpx.AsyncClient, body: Mapping[str, Any]) -> Any:
    response = await client.post("/v1/blueprints", json=dict(body))
    assert response.status_code == 201, response.text
    return response.json()["blueprint"]


async def new_credential(
    catalog: RunningCatalog, role: Role, integration: str | None = None
) -> tuple[str, str]:
    """Create a credential the way ``shoal credentials create`` does: a second store on the DB."""
    settings = catalog.settings
    store = await open_store(settings.resolved_database_url, base_url=catalog.url)
    try:
        return await store.credentials.create(role, integration=integration)
    finally:
        await store.close()


async def signing_key(catalog: RunningCatalog) -> str:
    store = await open_store(catalog.settings.resolved_database_url, base_url=catalog.url)
    try:
        return await store.credentials.signing_key()
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def client_as(
    catalog: RunningCatalog,
    role: Role,
    integration: str | None = None,
    user_agent: str = "shoal-tests",
) -> AsyncIterator[httpx.AsyncClient]:
    client_id, secret = await new_credential(catalog, role, integration)
    token = await token_for(catalog.url, client_id, secret)
    headers = {"Authorization": f"Bearer {token}", "User-Agent": user_agent}
    async with httpx.AsyncClient(base_url=catalog.url, headers=headers, timeout=30) as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is a Port-shaped JSON error: ``{"ok": false, "error", "message"}``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["ok"] is False
    assert isinstance(body["message"], str)
    if code is not None:
        assert body["error"] == code, body
    return body


class EventReader:
    """Reads ``text/event-stream`` events from an httpx streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self, within: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            event: dict[str, Any] = {}
            async for line in self._lines:
                if line.startswith(":"):
                    continue
                if not line:
                    if event:
                        return event
                    continue
                field, _, value = line.partition(": ")
                event[field] = orjson.loads(value) if field == "data" else value
        message = "the event stream ended"
        raise AssertionError(message)


async def undo_migration(store: Store, name: str, *statements: str) -> None:
    """Take ``store`` back to the schema before migration ``name``: run ``statements`` (SQL
    that both engines take) and forget that ``name`` was applied, so that opening the store
    again applies it to that older schema."""
    async with store.database.write() as conn:
        for statement in statements:
            await conn.execute(text(statement))
        await conn.execute(text("DELETE FROM schema_migrations WHERE name = :name"), {"name": name})
