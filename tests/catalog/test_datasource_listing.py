"""Listing an integration's entities last updated before a time (a delete phase's candidates):
the same pages whichever order SQLite reads them in, and the order it reads them in."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from shoal.catalog.store import Store, WriteOptions, entities as entity_store, open_store
from shoal.clock import now_us

OURS = WriteOptions(datasource="port-ocean/fake/0.1.0/fake-org/exporter")
THEIRS = WriteOptions(datasource="port-ocean/other/0.1.0/other/exporter")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await open_store(database_url, base_url="http://a")
    for identifier in ("a", "b"):
        body = {"identifier": identifier, "title": identifier, "schema": {"properties": {}}}
        await opened.blueprints.create(body, actor=None)
    try:
        yield opened
    finally:
        await opened.close()


async def _write(store: Store, blueprint: str, names: list[str], options: WriteOptions) -> None:
    result = await store.entities.upsert(blueprint, [{"identifier": n} for n in names], options)
    assert not result.errors, result.errors


async def _stale_candidates(store: Store, before: int) -> list[tuple[str, str]]:
    """Page through ours last updated before ``before``, two at a time."""
    listed: list[tuple[str, str]] = []
    cursor: str | None = None
    while True:
        page, cursor = await store.entities.datasource_page(
            prefix="port-ocean/fake/", suffix="/fake-org/exporter", before=before, limit=2,
            cursor=cursor,
        )  # fmt: skip
        listed.extend((entity["blueprint"], entity["identifier"]) for entity in page)
        if cursor is None:
            return listed


async def _org_with_a_resync_cut(store: Store) -> int:
    """Entities of ours and of another integration, then a cut, then some of ours written
    again and new ones: returns the cut."""
    await _write(store, "b", [f"x{n}" for n in range(4)], OURS)
    await _write(store, "a", [f"x{n}" for n in range(6)], OURS)
    await _write(store, "a", ["y0", "y1"], THEIRS)
    cut = now_us()
    await _write(store, "a", ["x1", "x4", "z0"], OURS)
    await _write(store, "b", ["x0"], OURS)
    return cut


@pytest.mark.parametrize("few", [0, 9, 1_000_000], ids=["none-few", "first-few", "all-few"])
async def test_the_candidates_are_listed_in_key_order_either_way(
    store: Store, few: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 9 entities were last updated before the cut, more before now: with few=9 (on SQLite)
    # the first listing reads the updatedAt index and the second walks the key order
    monkeypatch.setattr(entity_store, "FEW_UPDATED_BEFORE", few)
    cut = await _org_with_a_resync_cut(store)
    assert await _stale_candidates(store, cut) == [
        ("a", "x0"),
        ("a", "x2"),
        ("a", "x3"),
        ("a", "x5"),
        ("b", "x1"),
        ("b", "x2"),
        ("b", "x3"),
    ]
    assert await _stale_candidates(store, now_us()) == [
        *(("a", f"x{n}") for n in range(6)),
        ("a", "z0"),
        *(("b", f"x{n}") for n in range(4)),
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_reads_few_candidates_from_the_updated_at_index(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut = await _org_with_a_resync_cut(store)
    listings: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM entities" in statement and "ORDER BY" in statement:
            listings.append((statement, parameters))

    event.listen(store.database.engine.sync_engine, "before_cursor_execute", capture)
    try:
        # 9 entities were last updated before the cut: 7 of ours and the other integration's 2
        monkeypatch.setattr(entity_store, "FEW_UPDATED_BEFORE", 9)
        await _stale_candidates(store, cut)
        monkeypatch.setattr(entity_store, "FEW_UPDATED_BEFORE", 8)
        await _stale_candidates(store, cut)
    finally:
        event.remove(store.database.engine.sync_engine, "before_cursor_execute", capture)
    assert len(listings) == 8  # four pages each

    path = str(store.database.engine.url.database)
    with sqlite3.connect(path) as raw:
        plans = [
            " ".join(row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in listings
        ]
    assert all("ix_entities_updated_at" in plan for plan in plans[:4]), plans
    assert not any("ix_entities_updated_at" in plan for plan in plans[4:]), plans
