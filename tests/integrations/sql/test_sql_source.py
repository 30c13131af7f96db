"""The sql integration against real databases: SQLite files and the local PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from shoal.errors import SourceError
from shoal.integrations.sql import SqlConfig, create_integration
from tests.integrations.sql.conftest import PostgresTable


def make_config(url: str, kinds: dict[str, Any], **top: Any) -> SqlConfig:
    return SqlConfig.parse({"url": url, "kinds": kinds, **top})


async def fetch(config: SqlConfig, kind: str) -> list[list[dict[str, Any]]]:
    return [batch async for batch in create_integration(config).fetch(kind)]


async def test_sqlite_rows_become_items_in_batches(sqlite_db: Path) -> None:
    config = make_config(
        f"sqlite:///{sqlite_db}",
        {"service": {"query": "SELECT * FROM services ORDER BY id", "pageSize": 2}},
    )
    batches = await fetch(config, "service")
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert batches[0][0] == {
        "id": 1, "name": "payments", "owner": "team-a", "tier": 1, "cost": 12.5, "icon": "AAE=",
    }  # fmt: skip
    assert batches[1][1]["owner"] is None


async def test_params_and_the_global_page_size(sqlite_db: Path) -> None:
    query = "SELECT id, name FROM services WHERE owner = :owner ORDER BY id"
    config = make_config(
        f"sqlite:///{sqlite_db}",
        {"mine": {"query": query, "params": {"owner": "team-a"}}},
        pageSize=1,
    )
    assert await fetch(config, "mine") == [
        [{"id": 1, "name": "payments"}],
        [{"id": 3, "name": "billing"}],
    ]


async def test_an_empty_result_yields_nothing(sqlite_db: Path) -> None:
    config = make_config(
        f"sqlite:///{sqlite_db}", {"none": {"query": "SELECT * FROM services WHERE 0"}}
    )
    assert await fetch(config, "none") == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT * FROM no_such_table", "no such table: no_such_table"),
        ("SELEC 1", "syntax error"),
        ("SELECT :missing", "missing"),
    ],
)
async def test_database_errors_are_source_errors(sqlite_db: Path, query: str, message: str) -> None:
    config = make_config(f"sqlite:///{sqlite_db}", {"broken": {"query": query}})
    with pytest.raises(SourceError, match=message):
        await fetch(config, "broken")


async def test_an_unreachable_database_is_a_source_error(tmp_path: Path) -> None:
    sqlite = make_config(f"sqlite:///{tmp_path}/missing/dir/x.db", {"a": {"query": "SELECT 1"}})
    with pytest.raises(SourceError, match="unable to open database file"):
        await fetch(sqlite, "a")
    postgres = make_config("postgresql://u:hunter2@127.0.0.1:1/x", {"a": {"query": "SELECT 1"}})
    with pytest.raises(
        SourceError, match=r"query on postgresql\+asyncpg://u:\*\*\*@127.0.0.1:1/x"
    ) as caught:
        await fetch(postgres, "a")
    assert "hunter2" not in str(caught.value)


async def test_a_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    config = make_config(f"sqlite:///{missing}", {"a": {"query": "SELECT 1"}})
    with pytest.raises(SourceError, match="unable to open database file"):
        await fetch(config, "a")
    assert not missing.exists()


@pytest.mark.postgres
async def test_postgres_types_become_json(postgres_table: PostgresTable) -> None:
    table = postgres_table.name
    await postgres_table.connection.execute(
        f"""CREATE TABLE "{table}" (id uuid PRIMARY KEY, name text, created timestamptz,
            cost numeric(10, 2), labels jsonb, tags text[], uptime interval, ip inet)"""
    )
    await postgres_table.connection.execute(
        f"""INSERT INTO "{table}" VALUES ('00000000-0000-0000-0000-000000000001', 'payments',
            '2024-05-01T12:30:00Z', 12.50, '{{"tier": 1}}', ARRAY['pci', 'core'],
            interval '90 seconds', '10.0.0.1')"""
    )
    config = make_config(postgres_table.url, {"service": {"query": f'SELECT * FROM "{table}"'}})
    assert await fetch(config, "service") == [
        [
            {
                "id": "00000000-0000-0000-0000-000000000001",
                "name": "payments",
                "created": "2024-05-01T12:30:00+00:00",
                "cost": 12.5,
                "labels": {"tier": 1},
                "tags": ["pci", "core"],
                "uptime": 90.0,
                "ip": "10.0.0.1",
            }
        ]
    ]


@pytest.mark.postgres
async def test_postgres_streams_with_a_server_side_cursor(postgres_table: PostgresTable) -> None:
    table = postgres_table.name
    await postgres_table.connection.execute(
        f'CREATE TABLE "{table}" AS SELECT g AS id, md5(g::text) AS name'
        " FROM generate_series(1, 2500) g"
    )
    config = make_config(
        postgres_table.url,
        {"row": {"query": f'SELECT * FROM "{table}" ORDER BY id', "pageSize": 1000}},
    )
    batches = await fetch(config, "row")
    assert [len(batch) for batch in batches] == [1000, 1000, 500]
    assert [row["id"] for batch in batches for row in batch] == list(range(1, 2501))

    # Rows after the first 1000 take a millisecond or two each: a client that fetched the whole
    # result before handing out rows would wait about a second for the first batch; a cursor
    # hands out the first 1000 rows at once.
    slow = (
        "SELECT g AS id FROM generate_series(1, 1600) g"
        " WHERE g <= 1000 OR pg_sleep(0.001) IS NOT NULL"
    )
    started = time.monotonic()
    first_batch_after: float | None = None
    async for batch in create_integration(
        make_config(postgres_table.url, {"slow": {"query": slow}})
    ).fetch("slow"):
        first_batch_after = first_batch_after or time.monotonic() - started
        assert batch
    total = time.monotonic() - started
    assert first_batch_after is not None
    assert total > 0.6
    assert first_batch_after < total / 3, (first_batch_after, total)


@pytest.mark.postgres
async def test_postgres_queries_run_read_only(postgres_table: PostgresTable) -> None:
    table = postgres_table.name
    await postgres_table.connection.execute(f'CREATE TABLE "{table}" (id int)')
    config = make_config(
        postgres_table.url, {"w": {"query": f'INSERT INTO "{table}" VALUES (1) RETURNING id'}}
    )
    with pytest.raises(SourceError, match="read-only transaction"):
        await fetch(config, "w")
    assert await postgres_table.connection.fetchval(f'SELECT count(*) FROM "{table}"') == 0
