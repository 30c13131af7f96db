"""End to end: a SQLite file -> the sql integration -> the real catalog (SQLite, loopback).

Two resyncs show creates, updates and deletes; a third, whose query fails (the table was
renamed), fails the kind and deletes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.integrations.sql import SqlConfig, create_integration
from shoal.sync.run_record import RunRecord, RunStatus
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings
from tests.conftest import admin_credentials
from tests.integrations.sql.conftest import sqlite_exec

IDENTIFIER = "sql-inventory"


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[RunningCatalog]:
    settings = CatalogSettings(
        port=0, data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'c.db'}"
    )
    async with running_catalog(settings) as running:
        yield running


async def resync(catalog: RunningCatalog, config_path: Path) -> RunRecord:
    creds = admin_credentials(catalog)
    settings = RunnerSettings(
        catalog_url=catalog.url, client_id=creds["clientId"], client_secret=creds["clientSecret"],
        identifier=IDENTIFIER, progress_interval=0.1,
    )  # fmt: skip
    config = SqlConfig.from_env(
        {"SHOAL_SQL_CONFIG": str(config_path), "DB_DIR": str(config_path.parent)}
    )
    runner = IntegrationRunner(create_integration(config), settings)
    try:
        return await runner.once()
    finally:
        await runner.aclose()


async def rows(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get("/v1/blueprints/sqlRow/entities", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {e["identifier"]: e for e in response.json()["entities"]}


async def test_two_resyncs_create_update_and_delete(
    tmp_path: Path, sqlite_db: Path, catalog: RunningCatalog, admin: httpx.AsyncClient
) -> None:
    config_path = tmp_path / "sql.yaml"
    config_path.write_text(
        f"url: sqlite:///${{DB_DIR}}/{sqlite_db.name}\n"
        "kinds:\n"
        "  service:\n"
        "    query: SELECT id, name, owner, tier FROM services ORDER BY id\n"
        "    pageSize: 2\n",
        encoding="utf-8",
    )

    first = await resync(catalog, config_path)
    assert first.status is RunStatus.COMPLETED, first.to_json()
    stored = await rows(admin)
    assert sorted(stored) == [f"service:{n}" for n in range(1, 6)]
    assert stored["service:2"]["title"] == "search"
    assert stored["service:2"]["properties"] == {
        "kind": "service", "data": {"id": 2, "name": "search", "owner": "team-b", "tier": 2},
    }  # fmt: skip

    sqlite_exec(
        sqlite_db,
        "UPDATE services SET owner = 'team-z', tier = 1 WHERE id = 2",
        "DELETE FROM services WHERE id IN (4, 5)",
        "INSERT INTO services (id, name, owner, tier) VALUES (6, 'audit', 'team-a', 1)",
    )
    second = await resync(catalog, config_path)
    assert second.status is RunStatus.COMPLETED, second.to_json()
    service = second.kinds[0]
    assert (service.fetched, service.upserted, service.unchanged, service.deleted) == (4, 2, 2, 2)
    stored = await rows(admin)
    assert sorted(stored) == ["service:1", "service:2", "service:3", "service:6"]
    assert stored["service:2"]["properties"]["data"]["owner"] == "team-z"
    assert stored["service:6"]["title"] == "audit"

    sqlite_exec(sqlite_db, "ALTER TABLE services RENAME TO services_old")
    third = await resync(catalog, config_path)
    assert third.status is RunStatus.FAILED
    assert any("no such table: services" in e.message for e in third.kinds[0].errors.values())
    assert third.delete_phase.status == "skipped"
    assert len(await rows(admin)) == 4  # nothing deleted
