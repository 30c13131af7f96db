"""End to end: real repositories -> the git integration -> the real catalog (SQLite, loopback).

Two resyncs over a changing workspace show creates, updates and deletes of every kind; a third
with an unreadable path shows that a failing source deletes nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.integrations.git import GitSettings, create_integration
from shoal.sync.run_record import RunRecord, RunStatus
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings
from tests.conftest import admin_credentials
from tests.integrations.git.gitrepo import ADA, GRACE, LINUS, GitRepo

IDENTIFIER = "git-local"


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[RunningCatalog]:
    settings = CatalogSettings(
        port=0, data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'c.db'}"
    )
    async with running_catalog(settings) as running:
        yield running


async def resync(catalog: RunningCatalog, settings: GitSettings) -> RunRecord:
    creds = admin_credentials(catalog)
    runner_settings = RunnerSettings(
        catalog_url=catalog.url, client_id=creds["clientId"], client_secret=creds["clientSecret"],
        identifier=IDENTIFIER, progress_interval=0.1,
    )  # fmt: skip
    runner = IntegrationRunner(create_integration(settings), runner_settings)
    try:
        return await runner.once()
    finally:
        await runner.aclose()


async def entities(admin: httpx.AsyncClient, blueprint: str) -> dict[str, Any]:
    """The entities of ``blueprint`` this integration owns, by identifier."""
    response = await admin.post(
        "/v1/entities/search",
        json={
            "combinator": "and",
            "rules": [
                {"property": "$blueprint", "operator": "=", "value": blueprint},
                {"property": "$datasource", "operator": "contains", "value": f"/{IDENTIFIER}/"},
            ],
        },
    )
    assert response.status_code == 200, response.text
    return {entity["identifier"]: entity for entity in response.json()["entities"]}


def kind(record: RunRecord, name: str) -> Any:
    return next(k for k in record.kinds if k.kind == name)


async def test_two_resyncs_create_update_and_delete(
    tmp_path: Path, catalog: RunningCatalog, admin: httpx.AsyncClient
) -> None:
    src = tmp_path / "src"
    shop = GitRepo.init(src / "shop")
    shop.commit({"README.md": "# Shop\n", "app.py": "", "CODEOWNERS": "* @acme/shop\n"})
    shop.git("branch", "feature/cart")
    api = GitRepo.init(src / "api")
    api.commit({"main.go": "", ".github/CODEOWNERS": "*.go @acme/go\n"}, author=GRACE)
    settings = GitSettings.of([src], depth=1)
    shop_id, api_id = (src / "shop").as_posix(), (src / "api").as_posix()

    first = await resync(catalog, settings)
    assert first.status is RunStatus.COMPLETED, first.to_json()
    repositories = await entities(admin, "gitRepository")
    assert sorted(repositories) == [api_id, shop_id]
    assert repositories[shop_id]["title"] == "shop"
    assert repositories[shop_id]["properties"]["readmeTitle"] == "Shop"
    assert repositories[shop_id]["properties"]["languages"] == {"Python": 1, "Markdown": 1}
    assert sorted(await entities(admin, "gitBranch")) == [
        f"{api_id}:main", f"{shop_id}:feature/cart", f"{shop_id}:main"
    ]  # fmt: skip
    contributors = await entities(admin, "gitContributor")
    assert sorted(contributors) == [ADA[1], GRACE[1]]
    assert contributors[ADA[1]]["relations"]["repositories"] == [shop_id]
    assert contributors[ADA[1]]["properties"]["commitsByRepository"] == {shop_id: 1}
    codeowners = await entities(admin, "gitCodeowner")
    assert {c["relations"]["repository"] for c in codeowners.values()} == {api_id, shop_id}

    # The source moves on: a new commit by a new author, a new title and contributor; a branch
    # deleted; a repository removed from disk; a new repository with its own codeowners.
    shop.commit({"README.md": "# Shop 2\n", "web.ts": ""}, author=LINUS)
    shop.git("branch", "-q", "-D", "feature/cart")
    shutil.rmtree(src / "api")
    billing = GitRepo.init(src / "billing")
    billing.commit({"bill.rs": "", "docs/CODEOWNERS": "* @acme/billing\n"})
    billing_id = (src / "billing").as_posix()

    second = await resync(catalog, settings)
    assert second.status is RunStatus.COMPLETED, second.to_json()
    assert second.delete_phase.status == "done"
    repositories = await entities(admin, "gitRepository")
    assert sorted(repositories) == [billing_id, shop_id]  # api deleted, billing created
    shop_properties = repositories[shop_id]["properties"]
    assert shop_properties["readmeTitle"] == "Shop 2"  # updated
    assert shop_properties["languages"] == {"Markdown": 1, "Python": 1, "TypeScript": 1}
    assert sorted(await entities(admin, "gitBranch")) == [f"{billing_id}:main", f"{shop_id}:main"]
    contributors = await entities(admin, "gitContributor")
    assert sorted(contributors) == [ADA[1], LINUS[1]]  # Grace only committed to api
    assert contributors[ADA[1]]["relations"]["repositories"] == [billing_id, shop_id]
    codeowners = await entities(admin, "gitCodeowner")
    assert {c["relations"]["repository"] for c in codeowners.values()} == {billing_id, shop_id}
    assert kind(second, "repository").upserted == 2  # shop changed, billing is new
    assert kind(second, "branch").deleted == 2  # feature/cart and api's main
    assert second.delete_phase.deleted == 2 + 1 + 1 + 1  # branches, api, Grace, api's rule

    # A scanned path disappears (an unmounted disk): the kinds fail and nothing is deleted.
    third = await resync(catalog, GitSettings.of([src, tmp_path / "unmounted"], depth=1))
    assert third.status is RunStatus.FAILED
    assert kind(third, "repository").status.value == "failed"
    assert third.delete_phase.status == "skipped"
    assert sorted(await entities(admin, "gitRepository")) == [billing_id, shop_id]
