"""End to end: a JSON API on loopback -> the http integration -> the real catalog (SQLite).

Two resyncs show creates, updates and deletes (the second one through a transient 429); a
third, whose listing fails mid-way with persistent 500s, fails the kind and deletes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.integrations.http import HttpConfig, create_integration
from shoal.sync.run_record import RunRecord, RunStatus
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings
from tests.conftest import admin_credentials
from tests.integrations.http.api import TOKEN, FakeApi

IDENTIFIER = "http-users"
CONFIG = """
baseUrl: {base_url}
auth: {{type: bearer, token: "${{USERS_API_TOKEN}}"}}
retry: {{maxRetries: 2, backoff: 0.01}}
kinds:
  user:
    path: /page/users
    itemsPath: .data
    pagination: {{type: page, size: 10}}
"""


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
    config = HttpConfig.from_env({"SHOAL_HTTP_CONFIG": str(config_path), "USERS_API_TOKEN": TOKEN})
    runner = IntegrationRunner(create_integration(config), settings)
    try:
        return await runner.once()
    finally:
        await runner.aclose()


async def items(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get("/v1/blueprints/httpItem/entities", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {e["identifier"]: e for e in response.json()["entities"]}


async def test_two_resyncs_create_update_and_delete(
    tmp_path: Path, api: FakeApi, base_url: str, catalog: RunningCatalog, admin: httpx.AsyncClient
) -> None:
    config_path = tmp_path / "http.yaml"
    config_path.write_text(CONFIG.format(base_url=base_url), encoding="utf-8")

    first = await resync(catalog, config_path)
    assert first.status is RunStatus.COMPLETED, first.to_json()
    stored = await items(admin)
    assert sorted(stored) == sorted(f"user:{n}" for n in range(1, 26))
    assert stored["user:7"]["title"] == "User 7"
    assert stored["user:7"]["properties"] == {"kind": "user", "data": api.users[6]}
    assert stored["user:7"]["datasource"].endswith(f"/{IDENTIFIER}/exporter")

    api.users[0] = {**api.users[0], "name": "Ada", "revision": 1}  # updated
    del api.users[-1]  # user 25 deleted
    api.users.append({"id": 26, "name": "User 26", "revision": 0})  # created
    api.fail("page", 429, after=api.served["page"] + 1, retry_after="0")  # transient

    second = await resync(catalog, config_path)
    assert not api.failures[0].statuses  # the 429 was served, waited out and retried
    assert second.status is RunStatus.COMPLETED, second.to_json()
    user = second.kinds[0]
    assert (user.fetched, user.upserted, user.unchanged, user.deleted) == (25, 2, 23, 1)
    stored = await items(admin)
    assert "user:25" not in stored
    assert "user:26" in stored
    assert len(stored) == 25
    assert stored["user:1"]["title"] == "Ada"
    assert stored["user:1"]["properties"]["data"]["revision"] == 1

    del api.users[:5]  # gone at the source, but the listing below fails before its end
    api.fail("page", *[500] * 10, after=api.served["page"] + 1)
    third = await resync(catalog, config_path)
    assert third.status is RunStatus.FAILED
    assert third.kinds[0].status.value == "failed"
    assert any("HTTP 500" in error.message for error in third.kinds[0].errors.values())
    assert third.delete_phase.status == "skipped"
    assert len(await items(admin)) == 25  # nothing deleted
