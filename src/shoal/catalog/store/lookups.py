"""Entity rows looked up by key: prepared ``SELECT``s on a blueprint and a list of identifiers,
the hot reads of planned writes, deletes and blueprint updates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shoal.catalog.store import schema
from shoal.catalog.store.database import (
    IN_LIST_CHUNK,
    Database,
    chunks,
    key_chunks,
    statement_size,
)

__all__ = ["among", "existing_keys", "identifier_names", "select_in"]

_e = schema.entities

_IDENTIFIER_NAMES = tuple(f"i{n}" for n in range(statement_size(IN_LIST_CHUNK)))


def identifier_names(count: int) -> tuple[str, ...]:
    """The parameter names of :func:`among`'s ``count`` identifiers (at most a chunk's, padded
    where a statement comes in a few sizes): ``i0`` …"""
    return _IDENTIFIER_NAMES[:count]


def among(count: int) -> tuple[Any, Any]:
    """The conditions of a prepared statement on ``count`` entities of one blueprint: its
    parameters are ``b`` (the blueprint) and :func:`identifier_names` (the identifiers)."""
    return (
        _e.c.blueprint == bindparam("b"),
        _e.c.identifier.in_([bindparam(name) for name in identifier_names(count)]),
    )


async def select_in(
    db: Database,
    conn: AsyncConnection,
    columns: tuple[Any, ...],
    bp: str,
    identifiers: Sequence[str],
) -> list[Any]:
    """``columns`` of the entities of ``bp`` among ``identifiers`` (prepared per column list
    and chunk size)."""
    names = ",".join(column.name for column in columns)
    found: list[Any] = []
    for chunk in chunks(identifiers):
        count = len(chunk)

        def build(count: int = count) -> Any:
            return select(*columns).where(*among(count))

        sql, order = db.prepared(f"select {names} in {count}", build)
        assert order == ("b", *identifier_names(count))
        found.extend(
            await db.select_rows(conn, sql, (bp, *chunk), [column.name for column in columns])
        )
    return found


async def existing_keys(
    db: Database, conn: AsyncConnection, keys: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """The ``(blueprint, identifier)`` among ``keys`` that name an entity."""
    found: set[tuple[str, str]] = set()
    for bp, chunk in key_chunks(keys):
        rows = await select_in(db, conn, (_e.c.identifier,), bp, chunk)
        found.update((bp, identifier) for (identifier,) in rows)
    return found
