"""Real databases for the sql integration's tests: SQLite files, and a table of its own on the
local PostgreSQL (``SHOAL_TEST_DATABASE_URL``; skipped when unreachable, failed under CI)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_URL

SERVICES = [
    (1, "payments", "team-a", 1, 12.5, b"\x00\x01"),
    (2, "search", "team-b", 2, None, None),
    (3, "billing", "team-a", 1, 3.0, None),
    (4, "ledger", None, 3, 0.25, None),
    (5, "mail", "team-c", 2, 1.0, None),
]


def create_sqlite(path: Path, rows: list[tuple[Any, ...]] = SERVICES) -> Path:
    """A SQLite file with a ``services`` table holding ``rows``."""
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE services (id INTEGER PRIMARY KEY, name TEXT NOT NULL, owner TEXT,"
            " tier INTEGER, cost REAL, icon BLOB)"
        )
        connection.executemany("INSERT INTO services VALUES (?, ?, ?, ?, ?, ?)", rows)
    connection.close()
    return path


def sqlite_exec(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as connection:
        for statement in statements:
            connection.execute(statement)
    connection.close()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    return create_sqlite(tmp_path / "inventory.db")


@dataclass(frozen=True)
class PostgresTable:
    """A fresh table name on the test server, and a connection to fill it."""

    url: str
    name: str
    connection: Any  # asyncpg.Connection


@pytest.fixture
async def postgres_table() -> AsyncIterator[PostgresTable]:
    import asyncpg

    dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    try:
        connection = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable under CI=true: {exc}")
        pytest.skip(
            f"PostgreSQL at {POSTGRES_URL} is unreachable ({exc}); set SHOAL_TEST_DATABASE_URL"
        )
    name = f"shoal_sql_test_{uuid.uuid4().hex[:12]}"
    try:
        yield PostgresTable(POSTGRES_URL, name, connection)
    finally:
        await connection.execute(f'DROP TABLE IF EXISTS "{name}"')
        await connection.close()
