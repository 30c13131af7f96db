"""Engine, transactions and migrations: the one place that knows which database engine runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from shoal.catalog.store import schema
from shoal.clock import now_us
from shoal.errors import ConfigError

__all__ = ["MIGRATIONS", "Database", "Migration", "normalize_database_url", "open_database"]


def normalize_database_url(url: str) -> str:
    """Accept ``sqlite:///file.db`` and ``postgresql://…`` and pick the async drivers."""
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return url
    message = f"unsupported database URL {url!r}: use sqlite:///path.db or postgresql://…"
    raise ConfigError(message)


@dataclass(frozen=True, slots=True)
class Migration:
    """One named schema change, applied once and recorded in ``schema_migrations``."""

    name: str
    apply: Callable[[AsyncConnection], Awaitable[None]]


_INITIAL_TABLES = (
    "server_settings", "credentials", "blueprints", "entities", "entity_relations", "integrations",
    "resync_requests", "runs", "ingest_events", "kind_examples",
)  # fmt: skip


async def _initial(conn: AsyncConnection) -> None:
    tables = [schema.metadata.tables[name] for name in _INITIAL_TABLES]
    await conn.run_sync(schema.metadata.create_all, tables=tables)


async def _integration_leases(conn: AsyncConnection) -> None:
    await conn.run_sync(schema.integration_leases.create, checkfirst=True)


async def _entity_content_hash(conn: AsyncConnection) -> None:
    # 0001 creates ``entities`` from its current Table, which already has the column.
    def add(sync_conn: Any) -> None:
        columns = {column["name"] for column in inspect(sync_conn).get_columns("entities")}
        if "content_hash" not in columns:
            sync_conn.execute(text("ALTER TABLE entities ADD COLUMN content_hash VARCHAR(64)"))

    await conn.run_sync(add)


MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_initial", _initial),
    Migration("0002_integration_leases", _integration_leases),
    Migration("0003_entity_content_hash", _entity_content_hash),
)
"""Applied in order, each once, in the transaction that records it. Never edit a released one:
later migrations add to the schema (``Table`` objects in schema.py show the current shape)."""


class Database:
    """An async engine plus the transaction discipline both engines need.

    SQLite allows one writer at a time; writers queue on an in-process lock instead of
    failing with ``database is locked`` (several processes still work through busy_timeout).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def insert(self, table: Any) -> Any:
        """A dialect INSERT supporting ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
        if self.is_sqlite:
            return sqlite.insert(table)
        return postgresql.insert(table)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction; committed on success, rolled back on any error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def migrate(self) -> list[str]:
        """Apply pending migrations in order; returns the names applied."""
        applied: list[str] = []
        async with self.write() as conn:
            if self.is_postgres:  # replicas starting together migrate one at a time
                await conn.execute(text("SELECT pg_advisory_xact_lock(727274)"))
            await conn.run_sync(schema.schema_migrations.create, checkfirst=True)
            done = set((await conn.execute(select(schema.schema_migrations.c.name))).scalars())
            for migration in MIGRATIONS:
                if migration.name in done:
                    continue
                await migration.apply(conn)
                await conn.execute(
                    schema.schema_migrations.insert().values(
                        name=migration.name, applied_at=now_us()
                    )
                )
                applied.append(migration.name)
        return applied

    async def close(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")
    # Checkpoint the WAL every ~40 MB rather than every 4 MB (the default): bulk writes commit
    # hundreds of pages each, and the checkpoint runs inside the commit that crosses the mark.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.execute("PRAGMA journal_size_limit=67108864")
    cursor.close()


async def open_database(url: str) -> Database:
    """Connect and migrate. SQLite files (and their folder) are created when missing."""
    url = normalize_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=5, max_overflow=10)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
    else:
        engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    database = Database(engine)
    try:
        await database.migrate()
    except (OSError, exc.OperationalError, exc.InterfaceError) as error:
        await database.close()
        shown = parsed.render_as_string(hide_password=True)
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        message = f"cannot open the database {shown}: {reason}"
        raise ConfigError(message) from error
    except BaseException:
        await database.close()
        raise
    return database
