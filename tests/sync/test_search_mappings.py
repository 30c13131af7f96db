"""Search-query identifiers and relations in a mapping are passed through and resolved by the catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.sync.integration import Integration
from shoal.sync.run_record import RunStatus
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings
from tests.conftest import admin_credentials, token_for

BLUEPRINTS = [
    {"identifier": "user", "title": "User", "schema": {"properties": {"email": {"type": "string"}, "role": {"type": "string"}}}},
    {
        "identifier": "repo",
        "title": "Repo",
        "schema": {"properties": {}},
        "relations": {"owner": {"target": "user", "many": False}},
    },
]

# As in Ocean, every leaf of a search query is a jq expression (hence the quoted strings).
CONFIG = {
    "createMissingRelatedEntities": False,
    "resources": [
        {"kind": "user", "port": {"entity": {"mappings": {
            "identifier": ".login", "title": ".login", "blueprint": '"user"', "properties": {"email": ".email"}}}}},
        {"kind": "role", "port": {"entity": {"mappings": {
            "identifier": {"combinator": '"and"', "rules": [{"property": '"email"', "operator": '"="', "value": ".email"}]},
            "blueprint": '"user"', "properties": {"role": ".role"}}}}},
        {"kind": "repo", "port": {"entity": {"mappings": {
            "identifier": ".name", "title": ".name", "blueprint": '"repo"',
            "relations": {"owner": {"combinator": '"and"', "rules": [
                {"property": '"email"', "operator": '"="', "value": ".owner_email"}]}}}}}},
    ],
}  # fmt: skip


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[RunningCatalog]:
    settings = CatalogSettings(port=0, data_dir=tmp_path / "d", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    async with running_catalog(settings) as running:
        yield running


async def test_search_identifiers_and_relations_resolve(catalog: RunningCatalog) -> None:
    integration = Integration("toy", default_mapping=CONFIG, default_blueprints=BLUEPRINTS)

    @integration.on_resync("user")
    async def users(kind: str) -> list[dict[str, Any]]:
        return [{"login": "ada", "email": "ada@example.com"}, {"login": "bob", "email": "bob@example.com"}]

    @integration.on_resync("role")
    async def roles(kind: str) -> list[dict[str, Any]]:
        return [{"email": "ada@example.com", "role": "admin"}]

    @integration.on_resync("repo")
    async def repos(kind: str) -> list[dict[str, Any]]:
        return [{"name": "engine", "owner_email": "bob@example.com"}]

    creds = admin_credentials(catalog)
    settings = RunnerSettings(catalog_url=catalog.url, client_id=creds["clientId"], client_secret=creds["clientSecret"])
    runner = IntegrationRunner(integration, settings)
    try:
        record = await runner.once()
    finally:
        await runner.aclose()
    assert record.status is RunStatus.COMPLETED, record.to_json()

    token = await token_for(catalog.url, creds["clientId"], creds["clientSecret"])
    async with httpx.AsyncClient(base_url=catalog.url, headers={"Authorization": f"Bearer {token}"}) as client:
        ada = (await client.get("/v1/blueprints/user/entities/ada")).json()["entity"]
        engine = (await client.get("/v1/blueprints/repo/entities/engine")).json()["entity"]
    assert ada["properties"] == {"email": "ada@example.com", "role": "admin"}
    assert engine["relations"] == {"owner": "bob"}
