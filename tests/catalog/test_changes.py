"""Planned writes skip re-reading only when nothing they read was written since."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from shoal.catalog.auth import Role
from shoal.catalog.store import BulkResult, EntityStore, Store, WriteOptions, open_store
from shoal.catalog.store.changes import ChangeLog, Changes
from shoal.content_digest import body_digest
from tests.catalog.helpers import undo_migration


def changes(*identifiers: str) -> Changes:
    written = Changes()
    written.entities.update(("bp", identifier) for identifier in identifiers)
    return written


def test_a_plan_holds_when_every_write_since_is_known_and_wrote_other_rows() -> None:
    log = ChangeLog(size=3)
    log.record(5, changes("a"))
    log.record(6, changes("b"))
    read = {("bp", "c"), ("other", "a")}
    assert log.untouched(4, 7, read)  # versions 5 and 6
    assert log.untouched(6, 7, read)  # nothing committed since
    assert not log.untouched(5, 7, {("bp", "b")})  # 6 wrote a row the plan read
    assert not log.untouched(3, 7, read)  # 4 was not ours: another process wrote it
    log.record(7, None)  # a write that did not say what it changed
    assert not log.untouched(6, 8, read)
    log.record(8, changes())
    log.record(9, changes())
    assert not log.untouched(5, 10, read)  # 6 is forgotten (three remembered)
    assert log.untouched(7, 10, read)


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two catalog stores on one database, as two processes would have."""
    first = await open_store(database_url, base_url="http://a")
    second = await open_store(database_url, base_url="http://b")
    try:
        await first.blueprints.create(
            {
                "identifier": "item",
                "title": "Item",
                "schema": {"properties": {key: {"type": "number"} for key in "abc"}},
            },
            actor=None,
        )
        yield first, second
    finally:
        await first.close()
        await second.close()


MERGE = WriteOptions(merge=True)


async def with_a_write_between(
    monkeypatch: pytest.MonkeyPatch,
    store: Store,
    method: str,
    action: Awaitable[Any],
    between: Callable[[], Awaitable[object]],
    *,
    when: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> tuple[Any, int]:
    """``action``'s result, with ``between`` run once the first call of ``store``'s
    ``EntityStore`` ``method`` whose keyword arguments satisfy ``when`` has returned (that call
    waits for it); and how many times ``store`` called ``method``."""
    paused, written = asyncio.Event(), asyncio.Event()
    original = getattr(EntityStore, method)
    calls = 0

    async def pause_once(self: EntityStore, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        result = await original(self, *args, **kwargs)
        if self is store.entities:
            calls += 1
            if when(kwargs) and not paused.is_set():
                paused.set()
                await written.wait()
        return result

    monkeypatch.setattr(EntityStore, method, pause_once)

    async def write_between() -> None:
        await paused.wait()
        await between()
        written.set()

    _, result = await asyncio.gather(write_between(), action)
    return result, calls


async def upsert_with_a_write_between(
    monkeypatch: pytest.MonkeyPatch,
    store: Store,
    body: dict[str, Any],
    between: Callable[[], Awaitable[object]],
) -> BulkResult:
    """``store``'s upsert of ``body`` (an item), with ``between`` run after the upsert is
    planned and before it queues for the write lock."""
    upsert = store.entities.upsert("item", [body], MERGE)
    result, _ = await with_a_write_between(
        monkeypatch, store, "_plan", upsert, between, when=lambda kw: bool(kw.get("speculative"))
    )
    return result


async def test_a_write_of_another_process_between_plan_and_write_is_seen(
    stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = stores
    await first.entities.upsert("item", [{"identifier": "x", "properties": {"a": 1}}], MERGE)
    result = await upsert_with_a_write_between(
        monkeypatch,
        first,
        {"identifier": "x", "properties": {"c": 3}},
        lambda: second.entities.upsert(
            "item", [{"identifier": "x", "properties": {"b": 2}}], MERGE
        ),
    )
    assert not result.errors
    # merged over the row as the other process left it, not as it was when planned
    assert (await first.entities.get("item", "x")).properties == {"a": 1, "b": 2, "c": 3}


@pytest.mark.parametrize(
    ("between", "checked"), [("y", False), ("x", True), ("a credential", False)]
)
async def test_a_plan_is_read_again_only_if_a_write_since_touched_its_rows(
    stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch, between: str, checked: bool
) -> None:
    first, _ = stores
    await first.entities.upsert("item", [{"identifier": "x", "properties": {"a": 1}}], MERGE)
    holds = EntityStore._holds
    rechecks = 0

    async def counted_holds(self: EntityStore, *args: Any) -> bool:
        nonlocal rechecks
        rechecks += 1
        return await holds(self, *args)

    monkeypatch.setattr(EntityStore, "_holds", counted_holds)

    async def write() -> object:
        if between == "a credential":  # a control write: no entity, no blueprint
            return await first.credentials.create(Role.ADMIN)
        body = {"identifier": between, "properties": {"b": 2}}
        return await first.entities.upsert("item", [body], MERGE)

    await upsert_with_a_write_between(
        monkeypatch, first, {"identifier": "x", "properties": {"c": 3}}, write
    )
    # (nothing was written while the write in between queued: it was not read again either)
    assert rechecks == (1 if checked else 0)
    expected = {"a": 1, "b": 2, "c": 3} if between == "x" else {"a": 1, "c": 3}
    assert (await first.entities.get("item", "x")).properties == expected


async def test_a_store_from_before_store_versions_gets_them(database_url: str) -> None:
    store = await open_store(database_url, base_url="http://a")
    try:
        await store.blueprints.create(
            {"identifier": "item", "title": "Item", "schema": {"properties": {}}}, actor=None
        )
        await undo_migration(store, "0004_store_version", "DROP TABLE store_version")
    finally:
        await store.close()
    store = await open_store(database_url, base_url="http://a")  # migrates to 0004 again
    try:
        async with store.database.read() as conn:
            before = await store.database.version(conn)
        await store.entities.upsert("item", [{"identifier": "x"}], WriteOptions())
        async with store.database.read() as conn:
            assert before is not None
            assert await store.database.version(conn) == before + 1
        assert (await store.entities.get("item", "x")).identifier == "x"
    finally:
        await store.close()


async def _store_version(store: Store) -> int | None:
    async with store.database.read() as conn:
        return await store.database.version(conn)


async def test_a_digest_question_confirming_nothing_writes_nothing(
    stores: tuple[Store, Store],
) -> None:
    first, _ = stores
    body = {"identifier": "x", "properties": {"a": 1}}
    await first.entities.upsert("item", [body], MERGE)
    before = await _store_version(first)
    changed = body_digest({"identifier": "x", "properties": {"a": 2}})
    asked = [("x", changed), ("missing", body_digest({"identifier": "missing"}))]
    assert await first.entities.confirm_unchanged("item", asked, MERGE) == []
    assert await _store_version(first) == before  # no write transaction: nothing to stamp
    assert await first.entities.confirm_unchanged("item", [("x", body_digest(body))], MERGE) == [0]
    assert await _store_version(first) == (before or 0) + 1  # the stamp


@pytest.mark.parametrize(("between", "confirmed"), [("x by another process", []), ("y", [0])])
async def test_a_digest_question_reads_again_only_if_a_write_since_touched_its_rows(
    stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch, between: str, confirmed: list[int]
) -> None:
    first, second = stores
    body = {"identifier": "x", "properties": {"a": 1}}
    await first.entities.upsert("item", [body, {"identifier": "y"}], MERGE)

    async def write_between() -> None:
        if between == "y":  # this process, another row: the answer read holds
            await first.entities.upsert(
                "item", [{"identifier": "y", "properties": {"b": 2}}], MERGE
            )
        else:
            await second.entities.upsert(
                "item", [{"identifier": "x", "properties": {"a": 2}}], MERGE
            )

    # the first read is before the question queues for the write lock
    asked = first.entities.confirm_unchanged("item", [("x", body_digest(body))], MERGE)
    same, reads = await with_a_write_between(
        monkeypatch, first, "_same_digests", asked, write_between
    )
    assert same == confirmed
    assert reads == (1 if between == "y" else 2)
    expected = {"a": 1} if between == "y" else {"a": 2}
    assert (await first.entities.get("item", "x")).properties == expected
