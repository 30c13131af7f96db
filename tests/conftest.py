"""Shared fixtures: databases on both engines, a catalog served on loopback, an admin client."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings

POSTGRES_URL = os.environ.get(
    "SHOAL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("SHOAL_", "OCEAN__")) and name != "SHOAL_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


def _postgres_admin_dsn() -> str:
    return POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")


async def _create_postgres_database() -> str:
    import asyncpg

    name = f"shoal_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(_postgres_admin_dsn(), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable under CI=true: {exc}")
        pytest.skip(
            f"PostgreSQL at {POSTGRES_URL} is unreachable ({exc}); set SHOAL_TEST_DATABASE_URL"
        )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = _postgres_admin_dsn().rpartition("/")
    return f"{base}/{name}"


async def _drop_postgres_database(url: str) -> None:
    import asyncpg

    name = url.rpartition("/")[2]
    conn = await asyncpg.connect(_postgres_admin_dsn(), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    url = await _create_postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


@pytest.fixture
def catalog_settings(database_url: str, tmp_path: Path) -> CatalogSettings:
    return CatalogSettings(
        port=0, data_dir=tmp_path / "data", database_url=database_url, run_heartbeat_timeout=1.0
    )


@pytest.fixture
async def catalog(catalog_settings: CatalogSettings) -> AsyncIterator[RunningCatalog]:
    async with running_catalog(catalog_settings) as running:
        yield running


def admin_credentials(catalog: RunningCatalog) -> dict[str, str]:
    path = catalog.settings.data_dir / "admin-credentials.json"
    data: dict[str, str] = orjson.loads(path.read_bytes())
    return data


async def token_for(base_url: str, client_id: str, client_secret: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            "/v1/auth/access_token", json={"clientId": client_id, "clientSecret": client_secret}
        )
        response.raise_for_status()
        token: str = response.json()["accessToken"]
        return token


async def admin_client(catalog: RunningCatalog) -> httpx.AsyncClient:
    """An httpx client of ``catalog`` signed in as its first-start admin (close it after)."""
    creds = admin_credentials(catalog)
    token = await token_for(catalog.url, creds["clientId"], creds["clientSecret"])
    return httpx.AsyncClient(base_url=catalog.url, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def admin(catalog: RunningCatalog) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client logged in as the first-start admin credential."""
    creds = admin_credentials(catalog)
    token = await token_for(catalog.url, creds["clientId"], creds["clientSecret"])
    async with httpx.AsyncClient(
        base_url=catalog.url,
        headers={"Authorization": f"Bearer {token}", "User-Agent": "shoal-tests"},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
