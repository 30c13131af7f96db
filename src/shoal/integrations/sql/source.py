"""Streaming the rows of one kind's query, batch by batch, with a server-side cursor.

Every fetch opens its own engine (no pool: the connection closes with the fetch), runs the
query in a transaction that is rolled back, never committed -- read-only on PostgreSQL --
and streams the result with ``AsyncConnection.stream`` and ``yield_per`` (a server-side
cursor on PostgreSQL; SQLite produces rows lazily anyway), so only one batch of rows is in
memory at a time. Any error of the database or its driver -- unreachable server, bad SQL, a
missing table, a write refused -- raises :class:`~shoal.errors.SourceError` (the resync then
skips its delete phase). A SQLite file is opened read-only once before the query: a missing
file is an error, never a new empty database.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncGenerator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shoal.errors import ConfigError, SourceError
from shoal.integrations.sql.config import SqlConfig
from shoal.integrations.sql.rows import json_row
from shoal.types import JSONObject

__all__ = ["fetch_rows"]


def _describe(exc: BaseException) -> str:
    original = getattr(exc, "orig", None)  # the driver's own message, without SQLAlchemy's
    message = str(original if original is not None else exc).strip()  # preamble and SQL echo
    return f"{type(original or exc).__name__}: {message.splitlines()[0] if message else ''}"


def _open_read_only(path: str) -> None:
    sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True).close()


async def _check_sqlite_file(url: URL) -> None:
    """Raise if ``url`` names a SQLite file that cannot be opened for reading.

    Checked on a thread of our own rather than left to the driver: a failed aiosqlite connect
    stops its worker thread without waiting for it, and that thread then reports to the event
    loop, which may have closed by then.
    """
    path = url.database
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return
    if "uri" in url.query:  # a file: URI names its own mode
        return
    await asyncio.to_thread(_open_read_only, path)


async def fetch_rows(config: SqlConfig, kind: str) -> AsyncGenerator[list[JSONObject]]:
    """Yield the rows of ``kind``'s query as raw items, in batches of its page size."""
    try:
        query = config.kinds[kind]
    except KeyError:
        raise ConfigError(f"the sql config has no kind {kind!r}") from None
    size = config.page_size_of(kind)
    url = config.engine_url
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        await _check_sqlite_file(url)
        async with engine.connect() as connection:
            if url.get_backend_name() == "postgresql":
                await connection.execution_options(postgresql_readonly=True)
            result = await connection.stream(
                text(query.query), query.params, execution_options={"yield_per": size}
            )
            async for partition in result.mappings().partitions(size):
                yield [json_row(row) for row in partition]
    except Exception as exc:  # drivers raise their own errors, some not wrapped by SQLAlchemy
        where = url.render_as_string(hide_password=True)
        raise SourceError(f"kind {kind!r}: query on {where} failed: {_describe(exc)}") from exc
    finally:
        await engine.dispose()
