"""Engine, transactions and migrations: the one place that knows which database engine runs."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import itertools
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import MetaData, event, exc, insert, inspect, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from shoal.catalog.store import schema
from shoal.catalog.store.changes import ChangeLog, Changes, EntityKey
from shoal.clock import now_us
from shoal.errors import ConfigError

__all__ = [
    "CONTROL_SCHEMA",
    "IN_LIST_CHUNK",
    "MIGRATIONS",
    "Database",
    "Migration",
    "chunks",
    "control_file",
    "key_chunks",
    "normalize_database_url",
    "open_database",
    "statement_size",
]

log = logging.getLogger(__name__)

_SQLITE_MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
"""SQLite's default bound on a statement's parameters (999 before 3.32)."""

IN_LIST_CHUNK = 1000 if _SQLITE_MAX_VARIABLES > 999 else 400
"""Values per ``IN (...)`` list, within both engines' bound on a statement's parameters."""


def chunks(items: Sequence[Any], size: int = IN_LIST_CHUNK) -> Iterable[Sequence[Any]]:
    """``items`` in slices of ``size`` (for ``IN (...)`` lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def key_chunks(keys: Iterable[tuple[str, str]]) -> Iterable[tuple[str, Sequence[str]]]:
    """``(blueprint, identifiers)`` chunks of ``(blueprint, identifier)`` keys, in key order.

    ``blueprint = ? AND identifier IN (...)`` is an index range on both engines; SQLite reads
    ``(blueprint, identifier) IN (...)`` by scanning the whole index instead.
    """
    by_blueprint: dict[str, list[str]] = {}
    for blueprint, identifier in sorted(keys):
        by_blueprint.setdefault(blueprint, []).append(identifier)
    for blueprint, identifiers in by_blueprint.items():
        yield from ((blueprint, chunk) for chunk in chunks(identifiers))


_PG_WRITE_LOCK = 727273
"""The PostgreSQL advisory lock every write transaction of content holds (see
:class:`Database`)."""

_PG_CONTROL_LOCK = 727274
"""The PostgreSQL advisory lock every write transaction of control data holds."""

CONTROL_SCHEMA = "control"
"""The name a SQLite catalog's connections attach its control file under (see
:func:`control_file`)."""


def control_file(path: str | Path) -> Path:
    """The SQLite file holding the control data (:data:`schema.CONTROL_TABLES`) of the SQLite
    catalog in ``path``: ``shoal.db`` → ``shoal-control.db``, in the same folder."""
    path = Path(path)
    return path.with_name(f"{path.stem}-control{path.suffix}")


CHECKPOINT_INTERVAL = 0.25
"""Seconds between two WAL checkpoints of a SQLite catalog (see
:meth:`Database.checkpoint_forever`)."""

_ROW_STEP = 128
"""Multi-row statements come in sizes of 1, 2, 4 … 128 and then multiples of 128 rows."""


def normalize_database_url(url: str) -> str:
    """Accept ``sqlite:///file.db`` and ``postgresql://…`` and pick the async drivers."""
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return url
    message = f"unsupported database URL {_shown(url)}: use sqlite:///path.db or postgresql://…"
    raise ConfigError(message)


def _shown(url: str) -> str:
    """``url`` as errors show it: without its password (only its scheme, if it cannot be
    parsed)."""
    try:
        return repr(make_url(url).render_as_string(hide_password=True))
    except (exc.ArgumentError, ValueError):
        return f"{url.partition(':')[0]}:…"


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


async def _store_version(conn: AsyncConnection) -> None:
    await conn.run_sync(schema.store_version.create, checkfirst=True)
    await conn.execute(insert(schema.store_version).values(id=1, version=0))


async def _relation_targets(conn: AsyncConnection) -> None:
    # 0001 creates ``entity_relations`` from its current Table, which already has the column.
    def reshape(sync_conn: Any) -> None:
        inspector = inspect(sync_conn)
        columns = {column["name"] for column in inspector.get_columns("entity_relations")}
        if "written_in" not in columns:
            sync_conn.execute(
                text("ALTER TABLE entity_relations ADD COLUMN written_in BIGINT NOT NULL DEFAULT 0")
            )
        indexes = {index["name"] for index in inspector.get_indexes("entity_relations")}
        if "ix_entity_relations_target" in indexes:
            sync_conn.execute(text("DROP INDEX ix_entity_relations_target"))
        for index in schema.entity_relations.indexes:
            index.create(sync_conn, checkfirst=True)
        schema.relation_targets.create(sync_conn, checkfirst=True)
        schema.relation_targets_merged.create(sync_conn, checkfirst=True)

    await conn.run_sync(reshape)
    r, t = schema.entity_relations, schema.relation_targets
    key = [column.name for column in t.columns]
    await conn.execute(insert(t).from_select(key, select(*(r.c[name] for name in key))))
    version = (await conn.execute(select(schema.store_version.c.version))).scalar_one()
    await conn.execute(insert(schema.relation_targets_merged).values(id=1, version=version))


async def _ended_sessions(conn: AsyncConnection) -> None:
    await conn.run_sync(schema.ended_sessions.create, checkfirst=True)


async def _title_nulls_first(conn: AsyncConnection) -> None:
    # Untitled entities sort first on both engines: SQLite's indexes hold NULL first, and
    # PostgreSQL's index must too, or every page sorted by title sorts the whole blueprint.
    if conn.dialect.name == "postgresql":
        await conn.execute(text("DROP INDEX IF EXISTS ix_entities_blueprint_title"))
        await conn.execute(
            text(
                "CREATE INDEX ix_entities_blueprint_title"
                " ON entities (blueprint, title NULLS FIRST)"
            )
        )


async def _control_file(conn: AsyncConnection) -> None:
    # SQLite: the control tables were copied into the control file by a transaction of their
    # own (Database._prepare_control_file) before this one drops them from the main file, so
    # that no crash between the two files' commits can lose them.
    if conn.dialect.name == "sqlite":
        for table in schema.CONTROL_TABLES:
            await conn.execute(text(f"DROP TABLE IF EXISTS main.{table.name}"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_initial", _initial),
    Migration("0002_integration_leases", _integration_leases),
    Migration("0003_entity_content_hash", _entity_content_hash),
    Migration("0004_store_version", _store_version),
    Migration("0005_relation_targets", _relation_targets),
    Migration("0006_ended_sessions", _ended_sessions),
    Migration("0007_title_nulls_first", _title_nulls_first),
    Migration("0008_control_file", _control_file),
)
"""Applied in order, each once, in the transaction that records it. Never edit a released one:
later migrations add to the schema (``Table`` objects in schema.py show the current shape).

On SQLite, the control tables (:data:`schema.CONTROL_TABLES`) are in the control file since
``0008_control_file``: a later migration changing one must name it ``control.<table>`` there
(reflection and ``checkfirst`` look in the main file, and a table created there would hide the
control file's from every unqualified name)."""


class Database:
    """An async engine plus the transaction discipline both engines need.

    Write transactions of content (blueprints, entities) run one at a time, on both engines: a
    write checks what it reads (an entity merges over the stored row; a relation target must
    exist) and must not interleave with another that changes it. Writers queue on an
    in-process lock; on SQLite that also spares them ``database is locked`` (several processes
    still work through busy_timeout), and on PostgreSQL each write transaction also takes a
    transaction-level advisory lock, so that replicas sharing the database take turns too.

    Write transactions of control data (:data:`schema.CONTROL_TABLES`: integrations, resync
    requests, runs, credentials...) take turns the same way, but on locks of their own: a
    trigger never queues behind a bulk write of entities. On SQLite the control tables live in
    a database file of their own (:func:`control_file`), attached to every connection as
    :data:`CONTROL_SCHEMA`: SQLite locks a file for writing, so two transactions writing
    different files do not wait for each other. No transaction writes both kinds of data, so
    none depends on the two files committing together.

    Once migrated, every write transaction of content increments the store version and this
    process remembers what its own ones changed (:mod:`.changes`): :meth:`untouched` tells a planned
    write whether it can skip re-reading what it read.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_lock = asyncio.Lock()
        self._control_lock = asyncio.Lock()
        self._versioned = False
        self._writing: int | None = None
        """The store version of the write transaction in progress."""
        self._changes = ChangeLog()
        self._statements: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._last_stamp = 0
        self._last_write = time.monotonic()
        """When this process's last write transaction (other than :meth:`idle_write`'s)
        ended ..."""
        self.writes = 0
        """... and how many have."""

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

    def prepared(self, name: str, build: Callable[[], Any]) -> tuple[str, tuple[str, ...]]:
        """A hot statement, built by ``build`` and compiled once for this engine under
        ``name``: its SQL text and the order of its parameters.

        Executed with ``exec_driver_sql`` and positional rows, it skips SQLAlchemy's per-row
        parameter processing (JSON columns are then serialised by the caller, as JSONText does).
        """
        prepared = self._statements.get(name)
        if prepared is None:
            compiled = build().compile(dialect=self.engine.dialect)
            positions = tuple(compiled.positiontup or ())
            prepared = self._statements[name] = (compiled.string, positions)
        return prepared

    async def insert_rows(
        self, conn: AsyncConnection, sql: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        """Run ``sql``, an INSERT of one row of positional placeholders, for each of ``rows``.

        PostgreSQL takes them as one executemany (asyncpg pipelines it). On SQLite they go as
        multi-row ``VALUES`` statements instead: the sqlite3 module releases the GIL around each
        step of a statement, and executemany steps once per row, so while the event loop runs
        Python every row would wait for the GIL (up to the interpreter's switch interval). The
        statement sizes are bucketed (see ``_ROW_STEP``) so that the driver's statement cache
        keeps the few shapes compiled; a chunk is padded by repeating its last row, which is
        harmless for the upserts and ``ON CONFLICT DO NOTHING`` inserts this serves.
        """
        if not rows:
            return
        if not self.is_sqlite:
            await conn.exec_driver_sql(sql, [tuple(row) for row in rows])
            return
        most = max(1, _SQLITE_MAX_VARIABLES // len(rows[0]))
        if most > _ROW_STEP:
            most -= most % _ROW_STEP
        for start in range(0, len(rows), most):
            chunk = rows[start : start + most]
            size = statement_size(len(chunk))
            padding = itertools.repeat(chunk[-1], size - len(chunk))
            values = tuple(itertools.chain.from_iterable(itertools.chain(chunk, padding)))
            await conn.exec_driver_sql(_values_statement(sql, size), values)

    async def select_rows(
        self, conn: AsyncConnection, sql: str, params: Sequence[Any], columns: Sequence[str]
    ) -> list[Sequence[Any]]:
        """The rows of ``sql``, a SELECT of ``columns`` (names, in order), with positional
        ``params``.

        On SQLite the query comes back as one JSON array built by SQLite, in one step (see
        :meth:`insert_rows`: stepping row by row, each row would wait for the GIL while the
        event loop is busy). Columns must hold text, integers or NULL.
        """
        if not self.is_sqlite:
            return list(await conn.exec_driver_sql(sql, tuple(params)))
        wrapped = f"SELECT json_group_array(json_array({', '.join(columns)})) FROM ({sql})"
        rows: list[Sequence[Any]] = orjson.loads(
            (await conn.exec_driver_sql(wrapped, tuple(params))).scalar_one()
        )
        return rows

    @contextlib.asynccontextmanager
    async def write(self, changes: Changes | None = None) -> AsyncIterator[AsyncConnection]:
        """One write transaction; committed on success, rolled back on any error.

        ``changes``, filled in by the caller during the transaction, says which entity rows it
        changes, and that it changes nothing else a planned entity write reads (blueprints,
        other entities); without it, the transaction may have changed anything.
        """
        try:
            async with self._write_lock, self._begin(changes) as conn:
                yield conn
        finally:
            self._last_write = time.monotonic()
            self.writes += 1

    @contextlib.asynccontextmanager
    async def idle_write(self, writes: int) -> AsyncIterator[AsyncConnection | None]:
        """A write transaction of housekeeping done while the store is idle: it changes
        nothing a planned entity write reads, and does not count for :meth:`idle_for` or
        :attr:`writes`. Yields None instead, without a transaction, if another write of this
        process ended since :attr:`writes` was ``writes`` (one that queued meanwhile, say)."""
        async with self._write_lock:
            if self.writes != writes:
                yield None
                return
            async with self._begin(Changes()) as conn:
                yield conn

    def idle_for(self) -> float:
        """Seconds since this process's last write transaction of content (other than
        :meth:`idle_write`'s) ended; 0 while one holds the write lock."""
        if self._write_lock.locked():
            return 0.0
        return time.monotonic() - self._last_write

    @contextlib.asynccontextmanager
    async def _begin(self, changes: Changes | None) -> AsyncIterator[AsyncConnection]:
        """The transaction of a write that holds the write lock."""
        try:
            async with self._transaction(_PG_WRITE_LOCK) as conn:
                if self._versioned:
                    self._writing = await self._next_version(conn)
                yield conn
            if self._writing is not None:
                self._changes.record(self._writing, changes)
        finally:
            self._writing = None

    def stamp(self) -> int:
        """The time a write stamps on the entity rows it changes: strictly increasing in this
        process, so that a row's ``updated_at`` changes whenever the row does (a planned write
        re-checks the rows it read by it)."""
        self._last_stamp = max(now_us(), self._last_stamp + 1)
        return self._last_stamp

    @contextlib.asynccontextmanager
    async def control_write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction of control data (:data:`schema.CONTROL_TABLES`) and of nothing
        else; committed on success, rolled back on any error.

        It takes turns with the other control writes only (see the class), and is no store
        version: a planned entity write reads no control data. Nor does it count as activity
        for :meth:`idle_for`: it does not wait for housekeeping writes.
        """
        async with self._control_lock, self._transaction(_PG_CONTROL_LOCK) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _transaction(self, pg_lock: int) -> AsyncIterator[AsyncConnection]:
        """A transaction that holds, on PostgreSQL, the advisory lock ``pg_lock`` (so that
        replicas sharing the database take turns as this process's writers do)."""
        async with self.engine.begin() as conn:
            if self.is_postgres:
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({pg_lock})"))
            yield conn

    async def _next_version(self, conn: AsyncConnection) -> int:
        version = schema.store_version.c.version
        bumped = update(schema.store_version).values(version=version + 1).returning(version)
        return int((await conn.execute(bumped)).scalar_one())

    @property
    def writing(self) -> int:
        """The store version of the write transaction in progress (0 before migrations)."""
        return self._writing or 0

    async def version(self, conn: AsyncConnection) -> int | None:
        """The store version ``conn`` reads at (None before the store is migrated). Read it
        before what it is to date."""
        if not self._versioned:
            return None
        query = select(schema.store_version.c.version)
        return int((await conn.execute(query)).scalar_one())

    def untouched(self, version: int | None, read: Set[EntityKey]) -> bool:
        """Within a write transaction: whether none committed since store ``version`` (read by
        :meth:`version`) changed anything a plan reads but the entity rows in ``read``, nor
        those (see :mod:`.changes`). False when in doubt."""
        if version is None or self._writing is None:
            return False
        return self._changes.untouched(version, self._writing, read)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def checkpoint_forever(self, interval: float = CHECKPOINT_INTERVAL) -> None:
        """Copy SQLite's write-ahead log into the database file every ``interval`` seconds,
        until cancelled (PostgreSQL: returns at once).

        Left to itself, SQLite checkpoints inside the commit that crosses a WAL size mark:
        ~100 ms during which every writer waits. Here a reader connection's thread does it
        (``PASSIVE``: never blocking readers or the writer), beside the writes, so the log
        rarely reaches that mark.
        """
        if not self.is_sqlite:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.engine.connect() as conn:
                    await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except exc.OperationalError:  # busy or locked: the next round will do
                log.debug("WAL checkpoint skipped", exc_info=True)
            except Exception:  # anything else must not stop the checkpoints for good
                log.exception("WAL checkpoint failed; trying again in %.0f s", interval)

    async def migrate(self) -> list[str]:
        """Apply pending migrations in order; returns the names applied."""
        async with self._migration_lock():
            return await self._migrate()

    @contextlib.asynccontextmanager
    async def _migration_lock(self) -> AsyncIterator[None]:
        """Processes starting together on one SQLite file migrate one at a time: SQLite runs
        DDL outside the write transaction, so the transaction alone does not keep them apart
        (PostgreSQL's advisory lock does). A lock file beside the database, not the database
        file itself: closing any descriptor of that file would drop SQLite's own locks."""
        path = self.engine.url.database if self.is_sqlite else None
        if not path or path == ":memory:":
            yield
            return
        descriptor = os.open(f"{path}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            waiting = False
            while True:  # not a blocking flock in a thread: cancelling must not leave it behind
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waiting:
                        log.info("waiting for another process to migrate %s", path)
                        waiting = True
                    await asyncio.sleep(0.05)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    async def _migrate(self) -> list[str]:
        if self.is_sqlite:
            await self._prepare_control_file()
        applied: list[str] = []
        async with self.write() as conn:  # replicas starting together migrate one at a time
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
        self._versioned = True
        return applied

    async def _prepare_control_file(self) -> None:
        """Until ``0008_control_file`` is applied: create the control tables in the control
        file, and copy into them those of a main file from before it, in a transaction that
        writes the control file only (that migration then drops the originals). After: check
        that the control file is there.

        Refuses (:class:`ConfigError`) a migrated catalog whose control file is missing, and a
        new one whose control file holds data (one left by another catalog, whose main file
        was deleted): starting would lose its integrations and credentials, or take another
        catalog's.
        """
        main_path = str(self.engine.url.database)
        control_path = control_file(main_path)

        def prepare(sync_conn: Any) -> None:
            inspector = inspect(sync_conn)
            main = set(inspector.get_table_names())
            held = set(inspector.get_table_names(schema=CONTROL_SCHEMA))
            applied: set[str] = set()
            if schema.schema_migrations.name in main:
                names = sync_conn.execute(select(schema.schema_migrations.c.name)).scalars()
                applied = set(names)
            if "0008_control_file" in applied:
                if not held:
                    message = (
                        f"the catalog {main_path} has lost its control data: {control_path} "
                        "is missing or empty; restore it beside the catalog's file"
                    )
                    raise ConfigError(message)
                return
            if not applied and any(
                sync_conn.execute(text(f"SELECT 1 FROM {CONTROL_SCHEMA}.{name} LIMIT 1")).first()
                for name in sorted(held)
            ):
                message = (
                    f"{control_path} holds the control data of another catalog, yet "
                    f"{main_path} is a new one: move it away, or restore that catalog's file"
                )
                raise ConfigError(message)
            control = MetaData(schema=CONTROL_SCHEMA)
            copies = [table.to_metadata(control) for table in schema.CONTROL_TABLES]
            control.create_all(sync_conn, checkfirst=True)
            for table in copies:
                if table.name not in main:
                    continue
                stored = {column["name"] for column in inspector.get_columns(table.name)}
                kept = [column.name for column in table.columns if column.name in stored]
                columns = ", ".join(f'"{name}"' for name in kept)
                copy = f"{CONTROL_SCHEMA}.{table.name}"
                sync_conn.execute(text(f"DELETE FROM {copy}"))
                sync_conn.execute(
                    text(f"INSERT INTO {copy} ({columns}) SELECT {columns} FROM main.{table.name}")
                )

        async with self.control_write() as conn:
            await conn.run_sync(prepare)

    async def close(self) -> None:
        await self.engine.dispose()


def statement_size(rows: int) -> int:
    """The statement size that holds ``rows`` rows or values (see ``_ROW_STEP``): hot
    statements come in few sizes, padded up to them."""
    if rows <= _ROW_STEP:
        return 1 << (rows - 1).bit_length()
    return -(-rows // _ROW_STEP) * _ROW_STEP


@functools.lru_cache(maxsize=64)
def _values_statement(sql: str, rows: int) -> str:
    """``sql``, an INSERT with one ``VALUES (?, …)`` row, made to insert ``rows`` rows."""
    start = sql.index(" VALUES (") + len(" VALUES ")
    end = sql.index(")", start) + 1
    return sql[:start] + ", ".join([sql[start:end]] * rows) + sql[end:]


def _sqlite_setup(control: Path) -> Callable[[Any, Any], None]:
    """The set-up of each new connection to a SQLite catalog whose control file is
    ``control``."""

    def configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA cache_size=-65536")
        # Checkpoint the WAL every ~40 MB rather than every 4 MB (the default): bulk writes
        # commit hundreds of pages each, and the checkpoint runs inside the commit that
        # crosses the mark.
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.execute("PRAGMA journal_size_limit=67108864")
        cursor.execute(f"ATTACH DATABASE ? AS {CONTROL_SCHEMA}", (str(control),))
        cursor.execute(f"PRAGMA {CONTROL_SCHEMA}.journal_mode=WAL")
        cursor.execute(f"PRAGMA {CONTROL_SCHEMA}.synchronous=NORMAL")
        cursor.execute(f"PRAGMA {CONTROL_SCHEMA}.journal_size_limit=67108864")
        cursor.close()

    return configure


async def open_database(url: str) -> Database:
    """Connect and migrate. SQLite files (and their folder) are created when missing."""
    url = normalize_database_url(url)
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError):  # a port that is not a number, say
        message = f"the database URL {_shown(url)} cannot be parsed"
        raise ConfigError(message) from None
    if parsed.get_backend_name() == "sqlite":
        if (
            not parsed.database
            or parsed.database == ":memory:"
            or "memory" in parsed.query.values()
        ):
            message = (
                "an in-memory SQLite database cannot hold a catalog (every connection would see "
                "its own, empty one): use sqlite:///path/to/catalog.db"
            )
            raise ConfigError(message)
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=5, max_overflow=10)
        event.listen(engine.sync_engine, "connect", _sqlite_setup(control_file(parsed.database)))
    else:
        engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    database = Database(engine)
    try:
        await database.migrate()
    except (OSError, exc.DBAPIError) as error:  # unreachable, refused, no such database...
        await database.close()
        shown = parsed.render_as_string(hide_password=True)
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        message = f"cannot open the database {shown}: {reason}"
        raise ConfigError(message) from error
    except BaseException:
        await database.close()
        raise
    return database
