"""The store's engine layer: many-row statements and WAL checkpoints, on both engines."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text

from shoal.catalog.store.database import Database, open_database

probe = Table(
    "probe",
    MetaData(),
    Column("k", String(20), primary_key=True),
    Column("n", BigInteger),
    Column("s", Text),
)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = await open_database(database_url)
    async with database.write() as conn:
        await conn.run_sync(probe.create)
    yield database
    await database.close()


def _insert(database: Database) -> str:
    """The one-row INSERT, compiled for the engine (as the entity store prepares its own)."""
    statement = database.insert(probe).on_conflict_do_nothing()
    return str(statement.compile(dialect=database.engine.dialect))


def _placeholder(database: Database) -> str:
    return "?" if database.is_sqlite else "$1"


@pytest.mark.parametrize("count", [0, 1, 3, 128, 129, 300, 7000])
async def test_insert_rows_writes_every_row_once(database: Database, count: int) -> None:
    rows = [(f"k{i}", i * 1_000_000_007, None if i % 3 else f"é{i}\"'") for i in range(count)]
    async with database.write() as conn:
        await database.insert_rows(conn, _insert(database), rows)
    async with database.read() as conn:
        stored = await database.select_rows(
            conn, "SELECT k, n, s FROM probe ORDER BY n", (), ["k", "n", "s"]
        )
    assert [tuple(row) for row in stored] == rows


async def test_select_rows_with_parameters(database: Database) -> None:
    async with database.write() as conn:
        await database.insert_rows(conn, _insert(database), [("a", 1, "x"), ("b", 2, None)])
    query = f"SELECT k, s FROM probe WHERE n >= {_placeholder(database)}"
    async with database.read() as conn:
        found = await database.select_rows(conn, query, (2,), ["k", "s"])
        assert [tuple(row) for row in found] == [("b", None)]
        assert await database.select_rows(conn, query, (9,), ["k", "s"]) == []


async def test_wal_is_checkpointed_beside_the_writes(tmp_path: Path) -> None:
    database = await open_database(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        async with database.write() as conn:
            await conn.run_sync(probe.create)
        before = (tmp_path / "c.db").stat().st_size
        rows = [(f"k{i}", i, "x" * 200) for i in range(2000)]  # ~100 pages: below autocheckpoint
        async with database.write() as conn:
            await database.insert_rows(conn, _insert(database), rows)
        assert (tmp_path / "c.db").stat().st_size == before  # still only in the WAL
        checkpoints = asyncio.create_task(database.checkpoint_forever(interval=0.01))
        try:
            for _ in range(200):
                await asyncio.sleep(0.01)
                if (tmp_path / "c.db").stat().st_size > before:
                    break
        finally:
            checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoints
        assert (tmp_path / "c.db").stat().st_size > before + 200 * 2000
    finally:
        await database.close()


_OPEN_AT = """
import asyncio, sys, time
from shoal.catalog.store import open_store

async def main(url: str, at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.time()))
    store = await open_store(url, base_url="http://a")
    await store.close()

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


async def test_processes_starting_together_on_one_sqlite_file_all_migrate(tmp_path: Path) -> None:
    # SQLite runs DDL outside the write transaction: without a lock of their own, processes
    # migrating an empty file at once failed ("table schema_migrations already exists")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    at = time.time() + 2  # past every interpreter's start-up
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _OPEN_AT, url, str(at), stderr=asyncio.subprocess.PIPE
        )
        for _ in range(4)
    ]
    errors = [(await process.communicate())[1].decode() for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], errors
