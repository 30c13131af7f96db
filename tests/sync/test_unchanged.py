"""Skip-unchanged on the client side, for catalogs that rewrite every upsert (Port)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import orjson
import pytest

from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.integrations.fake import FakeSettings, create_integration
from shoal.sync.run_record import RunRecord, RunStatus
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings
from shoal.sync.unchanged import include_paths, is_unchanged
from tests.conftest import admin_client, admin_credentials


def test_only_the_fields_a_mapping_sets_are_compared() -> None:
    current = {"identifier": "a", "title": "A", "team": ["y", "x"], "properties": {"n": 1, "extra": 2},
               "relations": {"r": "b"}}  # fmt: skip
    assert is_unchanged({"identifier": "a", "title": "A", "properties": {"n": 1}}, current)
    assert is_unchanged({"identifier": "a", "team": ["x", "y"]}, current)
    assert is_unchanged({"identifier": "a", "properties": {"missing": None}}, current)
    assert not is_unchanged({"identifier": "a", "title": "B"}, current)
    assert not is_unchanged({"identifier": "a", "properties": {"n": 2}}, current)
    assert not is_unchanged({"identifier": "a", "relations": {"r": "c"}}, current)
    assert not is_unchanged({"identifier": "a"}, None)


def test_without_merge_what_the_mapping_leaves_out_is_compared_too() -> None:
    # a write that replaces the entity removes what it does not set
    current = {"identifier": "a", "title": "A", "icon": None, "team": [],
               "properties": {"n": 1, "gone": None}, "relations": {"r": "b", "many": []}}  # fmt: skip
    same = {"identifier": "a", "title": "A", "properties": {"n": 1}, "relations": {"r": "b"}}
    assert is_unchanged(same, current, merge=False)
    assert is_unchanged({**same, "team": None, "relations": {"r": "b", "many": None}}, current,
                        merge=False)  # fmt: skip
    assert not is_unchanged({**same, "properties": {}}, current, merge=False)
    assert is_unchanged({**same, "properties": {}}, current)  # merging keeps n
    assert not is_unchanged({**same, "relations": {}}, current, merge=False)
    assert not is_unchanged({key: v for key, v in same.items() if key != "title"}, current,
                            merge=False)  # fmt: skip
    assert not is_unchanged(same, {**current, "team": ["x"]}, merge=False)
    assert include_paths([same], merge=False) == []  # the whole entity


def test_include_paths_cover_what_is_compared() -> None:
    paths = include_paths(
        [{"identifier": "a", "title": "t", "properties": {"p": 1}, "relations": {"r": "x"}}]
    )
    assert paths == ["blueprint", "identifier", "properties.p", "relations.r", "title"]


class CountingTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.bulk_entities = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/entities/bulk"):
            self.bulk_entities += len(orjson.loads(await request.aread())["entities"])
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[RunningCatalog]:
    settings = CatalogSettings(
        port=0, data_dir=tmp_path / "d", database_url=f"sqlite:///{tmp_path / 'c.db'}"
    )
    async with running_catalog(settings) as running:
        yield running


async def run_counting(catalog: RunningCatalog, fake: FakeSettings) -> tuple[RunRecord, int]:
    creds = admin_credentials(catalog)
    settings = RunnerSettings(catalog_url=catalog.url, client_id=creds["clientId"], client_secret=creds["clientSecret"],
                              identifier="fake-org", target_is_port=True)  # fmt: skip
    transport = CountingTransport()
    runner = IntegrationRunner(create_integration(fake), settings, transport=transport)
    try:
        record = await runner.once()
    finally:
        await runner.aclose()
    return record, transport.bulk_entities


async def test_against_a_port_like_catalog_only_changed_entities_are_sent(
    catalog: RunningCatalog,
) -> None:
    fake = FakeSettings(persons=120, page_size=40)
    first, sent = await run_counting(catalog, fake)
    assert first.status is RunStatus.COMPLETED
    total = sum(k.fetched for k in first.kinds)
    assert sent == total

    again, sent = await run_counting(catalog, fake)
    assert sent == 0
    assert sum(k.unchanged for k in again.kinds) == total

    changed, sent = await run_counting(catalog, replace(fake, generation=1))
    persons = next(k for k in changed.kinds if k.kind == "fake-person")
    assert 0 < sent == persons.upserted < persons.fetched


async def test_against_a_port_like_catalog_without_merge_a_removed_property_is_removed(
    catalog: RunningCatalog,
) -> None:
    fake = FakeSettings(persons=30, page_size=40)
    first, _ = await run_counting(catalog, fake)
    assert first.status is RunStatus.COMPLETED
    async with await admin_client(catalog) as admin:
        path = "/v1/integration/fake-org"
        config = (await admin.get(path)).json()["integration"]["config"]
        config["enableMergeEntity"] = False
        person = next(r for r in config["resources"] if r["kind"] == "fake-person")
        del person["port"]["entity"]["mappings"]["properties"]["email"]
        skip = {"x-skip-resync": "true"}
        await admin.patch(f"{path}/config", json={"config": config}, headers=skip)

        again, sent = await run_counting(catalog, fake)
        assert again.status is RunStatus.COMPLETED, again.to_json()
        persons = next(k for k in again.kinds if k.kind == "fake-person")
        assert sent == persons.upserted == 30  # each person lost its e-mail: all are sent
        search = {"combinator": "and",
                  "rules": [{"property": "$blueprint", "operator": "=", "value": "fakePerson"}]}  # fmt: skip
        found = (await admin.post("/v1/entities/search", json=search)).json()["entities"]
        assert len(found) == 30
        assert not any("email" in entity["properties"] for entity in found)

        _, sent = await run_counting(catalog, fake)
        assert sent == 0  # and now they are the same again
