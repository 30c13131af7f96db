"""Several catalog processes on one PostgreSQL database share triggers (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from shoal.catalog.server import running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.catalog.store import open_store
from tests.catalog.helpers import EventReader
from tests.conftest import (
    _create_postgres_database,
    _drop_postgres_database,
    admin_credentials,
    token_for,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    url = await _create_postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


async def test_a_trigger_on_one_replica_reaches_a_subscriber_of_another(
    postgres_url: str, tmp_path: Path
) -> None:
    first = CatalogSettings(port=0, data_dir=tmp_path / "a", database_url=postgres_url)
    async with running_catalog(first) as replica_a:
        creds = admin_credentials(replica_a)
        second = CatalogSettings(port=0, data_dir=tmp_path / "b", database_url=postgres_url)
        async with running_catalog(second) as replica_b:
            assert not (
                tmp_path / "b" / "admin-credentials.json"
            ).exists()  # one admin per database
            token = await token_for(
                replica_b.url, creds["clientId"], creds["clientSecret"]
            )  # shared key
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(headers=headers, timeout=30) as client:
                created = await client.post(
                    f"{replica_a.url}/v1/integration", json={"installationId": "shared"}
                )
                assert created.status_code == 201
                async with client.stream(
                    "GET", f"{replica_a.url}/v1/integration/shared/events"
                ) as stream:
                    events = EventReader(stream)
                    assert (await events.next())["event"] == "ready"
                    patched = await client.patch(f"{replica_b.url}/v1/integration/shared", json={})
                    assert patched.status_code == 200
                    event = await events.next(within=5)
                    assert event["event"] == "resync-request"
                    assert event["data"]["source"] == "api"


@pytest.mark.parametrize(
    "kinds",
    [
        [f"kind-number-{n}" for n in range(250)],
        [f"{n}-{'é' * 500}" for n in range(8)],  # fewer characters than 8000, more bytes
    ],
    ids=["many-kinds", "non-ascii"],
)
async def test_a_run_too_large_to_notify_reaches_another_replica_whole(
    postgres_url: str, tmp_path: Path, kinds: list[str]
) -> None:
    # NOTIFY carries 8000 bytes at most: a larger run is cut short on the way, and the other
    # replica reads it whole from the database before streaming it
    first = CatalogSettings(port=0, data_dir=tmp_path / "a", database_url=postgres_url)
    second = CatalogSettings(port=0, data_dir=tmp_path / "b", database_url=postgres_url)
    async with running_catalog(first) as replica_a, running_catalog(second) as replica_b:
        creds = admin_credentials(replica_a)
        token = await token_for(replica_a.url, creds["clientId"], creds["clientSecret"])
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            await client.post(f"{replica_a.url}/v1/integration", json={"installationId": "big"})
            async with client.stream("GET", f"{replica_b.url}/v1/integration/big/events") as stream:
                events = EventReader(stream)
                assert (await events.next())["event"] == "ready"
                run = {
                    "startedAt": "2026-01-01T00:00:00Z",
                    "status": "running",
                    "kinds": [{"kind": kind, "fetched": n} for n, kind in enumerate(kinds)],
                }
                reported = await client.put(f"{replica_a.url}/v1/integration/big/runs/r1", json=run)
                assert reported.status_code == 200, reported.text
                event = await events.next(within=5)
                while event["event"] != "run":
                    event = await events.next(within=5)
                assert event["data"]["id"] == "r1"
                assert [k["kind"] for k in event["data"]["kinds"]] == kinds
                assert len(orjson.dumps(event["data"])) > 8000


async def test_replicas_starting_together_create_one_admin(
    postgres_url: str, tmp_path: Path
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        await asyncio.gather(
            *(
                stack.enter_async_context(
                    running_catalog(
                        CatalogSettings(port=0, data_dir=tmp_path / name, database_url=postgres_url)
                    )
                )
                for name in ("a", "b", "c")
            )
        )
    written = [n for n in ("a", "b", "c") if (tmp_path / n / "admin-credentials.json").exists()]
    assert len(written) == 1, written
    store = await open_store(postgres_url, base_url="http://a")
    try:
        assert await store.credentials.count() == 1
    finally:
        await store.close()
