"""Control data (integrations, requests, runs, credentials) is written beside content, not
behind it: on locks of its own, and on SQLite in a database file of its own."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import shoal.catalog.store.database as database_module
from shoal.catalog.store import Store, open_store, schema
from shoal.catalog.store.database import control_file
from shoal.catalog.store.schema import CONTROL_TABLES
from shoal.errors import ConfigError
from tests.catalog.helpers import OCEAN_BODY

CONTROL_NAMES = {table.name for table in CONTROL_TABLES}


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await open_store(database_url, base_url="http://a")
    yield opened
    await opened.close()


async def _meanwhile(hold: Callable[[], Any], action: Callable[[], Awaitable[Any]]) -> Any:
    """``action``'s result, run while a transaction of ``hold()`` (an async context manager
    yielding a connection) is open and has written; fails if it waits for that transaction."""
    holding, release = asyncio.Event(), asyncio.Event()

    async def held() -> None:
        async with hold() as conn:
            await conn.execute(text("SELECT 1"))
            holding.set()
            await release.wait()

    async with asyncio.TaskGroup() as group:
        group.create_task(held())
        await holding.wait()
        try:
            async with asyncio.timeout(5):
                return await action()
        finally:
            release.set()


async def test_a_trigger_does_not_wait_for_a_content_write(store: Store) -> None:
    await store.integrations.create(OCEAN_BODY | {"identifier": "it"}, actor=None)

    def content_write() -> Any:
        # a write transaction of content bumps the store version: it has written the main file
        return store.database.write()

    request = await _meanwhile(
        content_write,
        lambda: store.integrations.request_resync("it", source="api", actor="me"),
    )
    _, latest = await store.integrations.latest_request("it")
    assert latest == request


async def test_a_content_write_does_not_wait_for_a_control_write(store: Store) -> None:
    blueprint = {"identifier": "service", "title": "Service", "schema": {"properties": {}}}

    def held_control_write() -> Any:
        return _ControlWrite(store)

    created = await _meanwhile(
        held_control_write, lambda: store.blueprints.create(blueprint, actor=None)
    )
    assert created["identifier"] == "service"
    assert (await store.integrations.get("held"))["identifier"] == "held"


class _ControlWrite:
    """A control write transaction that has written (an integration) when it yields."""

    def __init__(self, store: Store) -> None:
        self._write = store.database.control_write()

    async def __aenter__(self) -> Any:
        conn = await self._write.__aenter__()
        now = 1
        record = {"identifier": "held"}
        await conn.execute(
            schema.integrations.insert().values(
                identifier="held", body=record, created_at=now, updated_at=now
            )
        )
        return conn

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._write.__aexit__(*exc)


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as raw:
        return {
            name for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }


def _delete_sqlite_file(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as raw:
        return int(raw.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def test_sqlite_keeps_control_data_in_a_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    await _catalog_with_control_data(f"sqlite:///{path}")
    assert control_file(path) == tmp_path / "c-control.db"
    assert not _tables(path) & CONTROL_NAMES
    assert _tables(control_file(path)) == CONTROL_NAMES
    assert _count(control_file(path), "integrations") == 1
    assert _count(control_file(path), "credentials") == 1


async def test_a_catalog_from_before_the_control_file_keeps_its_control_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.db"
    url = f"sqlite:///{path}"
    blueprint = {"identifier": "service", "title": "Service", "schema": {"properties": {}}}
    # a catalog as releases before 0008_control_file left it: control tables in the main file
    monkeypatch.setattr(database_module, "MIGRATIONS", database_module.MIGRATIONS[:-1])
    old = await open_store(url, base_url="http://a")
    try:
        await old.credentials.create_first_admin("first")
        await old.integrations.create(OCEAN_BODY | {"identifier": "it"}, actor=None)
        await old.blueprints.create(blueprint, actor=None)
    finally:
        await old.close()
    monkeypatch.undo()
    assert _count(path, "integrations") == 1
    # ... and a control file with a stale copy, as an upgrade interrupted after copying leaves
    with sqlite3.connect(control_file(path)) as raw:
        raw.execute(
            "INSERT INTO integrations VALUES ('stale', '{\"identifier\": \"stale\"}', 1, 1)"
        )

    store = await open_store(url, base_url="http://a")
    try:
        assert [record["identifier"] for record in await store.integrations.list()] == ["it"]
        assert await store.credentials.count() == 1
        assert (await store.blueprints.get("service"))["identifier"] == "service"
    finally:
        await store.close()
    assert not _tables(path) & CONTROL_NAMES
    assert _count(control_file(path), "integrations") == 1


async def _catalog_with_control_data(url: str) -> None:
    store = await open_store(url, base_url="http://a")
    try:
        await store.credentials.create_first_admin("first")
        await store.integrations.create(OCEAN_BODY | {"identifier": "it"}, actor=None)
    finally:
        await store.close()


async def test_a_new_sqlite_catalog_refuses_a_control_file_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    await _catalog_with_control_data(f"sqlite:///{path}")
    _delete_sqlite_file(path)  # the catalog's file, not its control file

    with pytest.raises(ConfigError, match="holds the control data of another catalog"):
        await open_store(f"sqlite:///{path}", base_url="http://a")
    assert _count(control_file(path), "integrations") == 1  # untouched


async def test_a_sqlite_catalog_refuses_to_start_without_its_control_file(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    await _catalog_with_control_data(f"sqlite:///{path}")
    _delete_sqlite_file(control_file(path))

    with pytest.raises(ConfigError, match="has lost its control data"):
        await open_store(f"sqlite:///{path}", base_url="http://a")


async def test_control_writes_are_no_store_version(store: Store) -> None:
    # a plan reads no control data: a control write must not send plans through their check
    async with store.database.read() as conn:
        before = await store.database.version(conn)
    await store.integrations.create(OCEAN_BODY | {"identifier": "it"}, actor=None)
    await store.integrations.request_resync("it", source="api", actor=None)
    async with store.database.read() as conn:
        assert await store.database.version(conn) == before
