"""Entities pointing at an entity are found whether or not their relation rows were merged into
the reverse index yet, and the index holds exactly the merged rows."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shoal.catalog.store import Store, WriteOptions, open_store, relation_targets, schema
from tests.catalog.helpers import undo_migration

_r, _t = schema.entity_relations, schema.relation_targets


async def _create_blueprints(store: Store) -> None:
    for blueprint in (
        {"identifier": "team", "title": "Team", "schema": {"properties": {}}},
        {
            "identifier": "svc",
            "title": "Service",
            "schema": {"properties": {}},
            "relations": {"owner": {"target": "team"}, "deps": {"target": "svc", "many": True}},
        },
    ):
        await store.blueprints.create(blueprint, actor=None)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await open_store(database_url, base_url="http://a")
    await _create_blueprints(opened)
    try:
        yield opened
    finally:
        await opened.close()


async def _write(store: Store, blueprint: str, *bodies: dict[str, object]) -> None:
    result = await store.entities.upsert(blueprint, list(bodies), WriteOptions())
    assert not result.errors, result.errors


async def _write_s1_owned_by_t1(store: Store) -> None:
    await _write(store, "team", {"identifier": "t1"})
    await _write(store, "svc", {"identifier": "s1", "relations": {"owner": "t1"}})


@contextlib.asynccontextmanager
async def _merging_when_idle(store: Store) -> AsyncIterator[None]:
    """``store``'s idle merges running (as in the catalog) while the block runs."""
    async with asyncio.TaskGroup() as group:
        merging = group.create_task(store.relations.merge_when_idle())
        yield
        merging.cancel()


async def _pointing_at(store: Store, blueprint: str, identifier: str) -> list[tuple[str, ...]]:
    return [tuple(row) for row in await store.entities.related(blueprint, identifier)]


def _merge_whole_backlog_at(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    """Make the write that takes the rows not merged to ``rows`` merge all of them."""
    monkeypatch.setattr(relation_targets, "MERGE_BACKLOG", rows)
    monkeypatch.setattr(relation_targets, "MERGE_ROWS", 1_000_000_000)


async def _copies(store: Store) -> set[tuple[str, ...]]:
    """The identifiers of the entities whose relation rows ``relation_targets`` holds."""
    async with store.database.read() as conn:
        return {tuple(row) for row in await conn.execute(select(_t.c.identifier))}


async def _store_version(store: Store) -> int | None:
    async with store.database.read() as conn:
        return await store.database.version(conn)


async def _assert_index_holds_the_merged_rows(store: Store) -> None:
    key = ("blueprint", "identifier", "relation", "target_blueprint", "target_identifier")
    async with store.database.read() as conn:
        merged = (await conn.execute(select(schema.relation_targets_merged.c.version))).scalar()
        rows = await conn.execute(select(*(_r.c[k] for k in key)).where(_r.c.written_in <= merged))
        copies = await conn.execute(select(*(_t.c[k] for k in key)))
        assert {tuple(row) for row in copies} == {tuple(row) for row in rows}


@pytest.mark.parametrize("merge_rows", [1, 3, 1_000_000], ids=["every-write", "some", "never"])
async def test_entities_pointing_at_one_are_found_merged_or_not(
    store: Store, merge_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _merge_whole_backlog_at(monkeypatch, merge_rows)
    await _write(store, "team", {"identifier": "t1"}, {"identifier": "t2"})
    await _write(store, "svc", {"identifier": "s0", "relations": {"owner": "t1"}})
    for n in range(1, 5):  # one write each, so that merges fall between them
        deps = [f"s{d}" for d in range(n)]
        owner = "t1" if n % 2 else "t2"
        await _write(
            store, "svc", {"identifier": f"s{n}", "relations": {"owner": owner, "deps": deps}}
        )

    assert await _pointing_at(store, "team", "t1") == [
        ("owner", "svc", "s0"),
        ("owner", "svc", "s1"),
        ("owner", "svc", "s3"),
    ]
    assert await _pointing_at(store, "svc", "s1") == [
        ("deps", "svc", "s2"),
        ("deps", "svc", "s3"),
        ("deps", "svc", "s4"),
    ]
    await _assert_index_holds_the_merged_rows(store)

    # s3 moves to t2 and drops its deps: its old relation rows and their copies go
    await _write(store, "svc", {"identifier": "s3", "relations": {"owner": "t2", "deps": []}})
    assert await _pointing_at(store, "team", "t1") == [
        ("owner", "svc", "s0"),
        ("owner", "svc", "s1"),
    ]
    assert ("deps", "svc", "s3") not in await _pointing_at(store, "svc", "s1")
    await _assert_index_holds_the_merged_rows(store)

    # deleting t1 clears the owner of what pointed at it
    await store.entities.delete_many("team", ["t1"], delete_dependents=False)
    assert await _pointing_at(store, "team", "t1") == []
    assert (await store.entities.get("svc", "s1")).relations["owner"] is None
    await _assert_index_holds_the_merged_rows(store)

    # deleting s1 with its dependents takes s2 and s4 (deps on s1), not s3 (deps cleared)
    await store.entities.delete_many("svc", ["s1"], delete_dependents=True)
    async with store.database.read() as conn:
        left = set((await conn.execute(select(schema.entities.c.identifier))).scalars())
    assert left == {"t2", "s0", "s3"}
    assert await _pointing_at(store, "svc", "s0") == []
    assert await _pointing_at(store, "team", "t2") == [("owner", "svc", "s3")]
    await _assert_index_holds_the_merged_rows(store)


@pytest.mark.parametrize("merge_rows", [1, 1_000_000], ids=["merged", "not-merged"])
async def test_a_blueprint_dropping_or_retargeting_a_relation_moves_its_rows(
    store: Store, merge_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _merge_whole_backlog_at(monkeypatch, merge_rows)
    await store.blueprints.create({"identifier": "squad", "title": "Squad"}, actor=None)
    await _write(store, "team", {"identifier": "t1"})
    await _write(store, "squad", {"identifier": "t1"})
    await _write(
        store, "svc", {"identifier": "s1", "relations": {"owner": "t1", "deps": []}},
        {"identifier": "s2", "relations": {"deps": ["s1"]}},
    )  # fmt: skip

    # owner now points at squads: s1 relates to squad t1, no longer to team t1
    await store.blueprints.update("svc", {"relations": {"owner": {"target": "squad"}}})
    assert await _pointing_at(store, "team", "t1") == []
    assert await _pointing_at(store, "squad", "t1") == [("owner", "svc", "s1")]
    await _assert_index_holds_the_merged_rows(store)
    # so deleting team t1 leaves s1 alone, and deleting squad t1 clears its owner
    await store.entities.delete_many("team", ["t1"], delete_dependents=True)
    assert (await store.entities.get("svc", "s1")).relations["owner"] == "t1"
    await store.entities.delete_many("squad", ["t1"], delete_dependents=False)
    assert (await store.entities.get("svc", "s1")).relations["owner"] is None

    # a relation dropped relates nothing: deleting its old target keeps its holders
    relations = {"owner": {"target": "squad"}}  # deps is gone
    await store.blueprints.update("svc", {"relations": relations}, replace=True)
    assert await _pointing_at(store, "svc", "s1") == []
    # ... until it is defined again: s2 still holds its value
    relations["deps"] = {"target": "svc", "many": True}
    await store.blueprints.update("svc", {"relations": relations}, replace=True)
    assert await _pointing_at(store, "svc", "s1") == [("deps", "svc", "s2")]
    await _assert_index_holds_the_merged_rows(store)
    del relations["deps"]
    await store.blueprints.update("svc", {"relations": relations}, replace=True)
    await store.entities.delete_many("svc", ["s1"], delete_dependents=True)
    assert (await store.entities.get("svc", "s2")).identifier == "s2"
    await _assert_index_holds_the_merged_rows(store)


@pytest.mark.parametrize("merge_rows", [1, 1_000_000], ids=["merged", "not-merged"])
async def test_a_relation_defined_again_or_retargeted_clears_values_naming_no_entity(
    store: Store, merge_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _merge_whole_backlog_at(monkeypatch, merge_rows)
    await _write(store, "team", {"identifier": "t1"}, {"identifier": "t2"})
    await _write(
        store, "svc", {"identifier": "s1", "relations": {"owner": "t1"}},
        {"identifier": "s2", "relations": {"owner": "t2", "deps": ["s1"]}},
        {"identifier": "s3", "relations": {"deps": ["s1", "s2"]}},
    )  # fmt: skip
    deps = {"target": "svc", "many": True}
    await store.blueprints.update("svc", {"relations": {"deps": deps}}, replace=True)
    await store.entities.delete_many("team", ["t1"], delete_dependents=True)  # owner is gone

    # owner again: s1's value names a team deleted meanwhile, cleared as the delete would have
    before = {s: (await store.entities.get("svc", s)).updated_at for s in ("s1", "s2")}
    owner = {"target": "team"}
    await store.blueprints.update("svc", {"relations": {"deps": deps, "owner": owner}})
    s1, s2 = [await store.entities.get("svc", s) for s in ("s1", "s2")]
    assert (s1.relations["owner"], s2.relations["owner"]) == (None, "t2")
    assert s1.updated_at > before["s1"] and s2.updated_at == before["s2"]
    await _write(store, "svc", {"identifier": "s1", "title": "S1"})  # it names no missing team
    assert await _pointing_at(store, "team", "t2") == [("owner", "svc", "s2")]

    # deps now points at squads: of s3's values only s1 names one
    await store.blueprints.create({"identifier": "squad", "title": "Squad"}, actor=None)
    await _write(store, "squad", {"identifier": "s1"})
    squads = {"target": "squad", "many": True}
    await store.blueprints.update("svc", {"relations": {"deps": squads, "owner": owner}})
    assert (await store.entities.get("svc", "s3")).relations["deps"] == ["s1"]
    assert (await store.entities.get("svc", "s2")).relations["deps"] == ["s1"]
    assert await _pointing_at(store, "squad", "s1") == [
        ("deps", "svc", "s2"),
        ("deps", "svc", "s3"),
    ]
    await _assert_index_holds_the_merged_rows(store)


@pytest.mark.parametrize("merge_rows", [1, 1_000_000], ids=["merged", "not-merged"])
async def test_a_blueprint_retargeting_two_relations_at_once_moves_both(
    store: Store, merge_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _merge_whole_backlog_at(monkeypatch, merge_rows)
    await store.blueprints.create({"identifier": "squad", "title": "Squad"}, actor=None)
    relations = {"a": {"target": "team"}, "b": {"target": "team"}}
    await store.blueprints.create({"identifier": "pair", "relations": relations}, actor=None)
    await _write(store, "team", {"identifier": "t1"})
    await _write(store, "team", {"identifier": "t2"})
    await _write(
        store, "pair", {"identifier": "p1", "relations": {"a": "t1", "b": "t1"}},
        {"identifier": "p2", "relations": {"a": "t2", "b": "t2"}},
    )  # fmt: skip
    await _write(store, "squad", {"identifier": "t1"})  # no squad t2: p2's values are cleared
    relations = {"a": {"target": "squad"}, "b": {"target": "squad"}}
    await store.blueprints.update("pair", {"relations": relations})
    assert await _pointing_at(store, "squad", "t1") == [("a", "pair", "p1"), ("b", "pair", "p1")]
    assert (await store.entities.get("pair", "p2")).relations == {"a": None, "b": None}
    await _assert_index_holds_the_merged_rows(store)


async def test_a_lookup_during_a_merge_by_another_process_misses_nothing(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lookup reads the rows not merged yet and relation_targets in two queries; another
    # process (a replica) merging between the two must not hide the rows it moves.
    await _write_s1_owned_by_t1(store)
    paused, resume = asyncio.Event(), asyncio.Event()
    gate: contextvars.ContextVar[bool] = contextvars.ContextVar("gate", default=False)
    execute = AsyncConnection.execute

    async def pausing(self: AsyncConnection, *args: Any, **kwargs: Any) -> Any:
        result = await execute(self, *args, **kwargs)
        if gate.get():  # after the lookup's first query
            gate.set(False)
            paused.set()
            await resume.wait()
        return result

    monkeypatch.setattr(AsyncConnection, "execute", pausing)

    async def lookup() -> list[tuple[str, ...]]:
        gate.set(True)
        return await _pointing_at(store, "team", "t1")

    other = await open_store(database_url, base_url="http://b")
    try:
        looking = asyncio.create_task(lookup())
        await paused.wait()
        _merge_whole_backlog_at(monkeypatch, 1)  # its next write merges
        await _write(other, "svc", {"identifier": "s2", "relations": {"owner": "t1"}})
        resume.set()
        assert await looking == [("owner", "svc", "s1"), ("owner", "svc", "s2")]
    finally:
        await other.close()


async def test_a_write_that_takes_the_backlog_to_its_mark_merges_its_oldest_step(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relation_targets, "MERGE_BACKLOG", 4)
    monkeypatch.setattr(relation_targets, "MERGE_ROWS", 2)
    await _write(store, "team", {"identifier": "t1"})
    await _write(
        store, "svc", *({"identifier": f"a{n}", "relations": {"owner": "t1"}} for n in range(3))
    )
    assert await _copies(store) == set()  # 3 rows: below the mark
    await _write(store, "svc", {"identifier": "b", "relations": {"owner": "t1"}})
    # a step holds whole transactions: the first one's 3 rows (at least 2), not b's
    assert await _copies(store) == {("a0",), ("a1",), ("a2",)}
    await _assert_index_holds_the_merged_rows(store)
    assert [row[2] for row in await _pointing_at(store, "team", "t1")] == ["a0", "a1", "a2", "b"]


async def test_a_delete_first_merges_steps_of_their_own_until_few_rows_wait(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relation_targets, "MERGE_ROWS", 2)
    monkeypatch.setattr(relation_targets, "MERGE_BACKLOG", 1_000)
    await _write(store, "team", {"identifier": "t1"}, {"identifier": "t2"})
    for prefix in "abc":  # three transactions of two relation rows each
        await _write(
            store,
            "svc",
            *({"identifier": f"{prefix}{n}", "relations": {"owner": "t1"}} for n in range(2)),
        )
    assert await _copies(store) == set()
    before = await _store_version(store)
    assert before is not None
    await store.entities.delete_many("team", ["t2"], delete_dependents=True)
    assert len(await _copies(store)) == 6
    assert await _store_version(store) == before + 4  # three steps, then the delete
    await _assert_index_holds_the_merged_rows(store)


async def _create_incidents_of_s1(store: Store, count: int) -> None:
    """An ``incident`` blueprint (pointing at services; no relation points at it), and
    ``count`` incidents of ``s1``."""
    incident = {
        "identifier": "incident",
        "title": "Incident",
        "schema": {"properties": {}},
        "relations": {"svc": {"target": "svc"}},
    }
    await store.blueprints.create(incident, actor=None)
    await _write(
        store,
        "incident",
        *({"identifier": f"i{n}", "relations": {"svc": "s1"}} for n in range(count)),
    )


def _record_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The target blueprint of every lookup by target from now on, in order."""
    looked_up: list[str] = []
    pointing_at = relation_targets.Relations.pointing_at

    async def recorded(
        self: relation_targets.Relations, conn: AsyncConnection, target: str, *args: Any, **kw: Any
    ) -> list[relation_targets.RelationRow]:
        looked_up.append(target)
        return await pointing_at(self, conn, target, *args, **kw)

    monkeypatch.setattr(relation_targets.Relations, "pointing_at", recorded)
    return looked_up


async def test_deleting_entities_no_relation_points_at_looks_up_and_merges_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relation_targets, "MERGE_ROWS", 2)
    monkeypatch.setattr(relation_targets, "MERGE_BACKLOG", 1_000)
    monkeypatch.setattr(relation_targets, "MERGE_AFTER_LOOKUPS", 1)
    await _write_s1_owned_by_t1(store)
    await _create_incidents_of_s1(store, 3)
    looked_up = _record_lookups(monkeypatch)
    before = await _store_version(store)
    assert before is not None

    await store.entities.delete_many("incident", ["i0"], delete_dependents=True)
    assert looked_up == []
    assert await _store_version(store) == before + 1  # the delete alone: no merge step
    assert await _copies(store) == set()
    async with store.database.read() as conn:
        holders = select(_r.c.identifier).where(_r.c.target_identifier == "s1")
        assert set((await conn.execute(holders)).scalars()) == {"i1", "i2"}

    # deleting what incidents point at takes them as dependents; what points at them is not
    # looked up
    await store.entities.delete_many("team", ["t1"], delete_dependents=True)
    assert looked_up == ["team", "svc"]
    async with store.database.read() as conn:
        left = set((await conn.execute(select(schema.entities.c.identifier))).scalars())
    assert left == set()
    await _assert_index_holds_the_merged_rows(store)


async def test_deleting_entities_a_relation_has_come_to_point_at_clears_it(store: Store) -> None:
    await _write_s1_owned_by_t1(store)
    await _create_incidents_of_s1(store, 2)
    await store.blueprints.update("team", {"relations": {"oncall": {"target": "incident"}}})
    await _write(store, "team", {"identifier": "t1", "relations": {"oncall": "i1"}})
    assert await _pointing_at(store, "incident", "i1") == [("oncall", "team", "t1")]

    await store.entities.delete_many("incident", ["i1"], delete_dependents=False)
    assert (await store.entities.get("team", "t1")).relations["oncall"] is None
    assert [row[2] for row in await _pointing_at(store, "svc", "s1")] == ["i0"]
    await _assert_index_holds_the_merged_rows(store)


@pytest.mark.parametrize("merge_rows", [1, 1_000_000], ids=["merged", "not-merged"])
async def test_clearing_what_pointed_at_a_deleted_entity_is_not_a_statement_per_holder(
    store: Store, merge_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _merge_whole_backlog_at(monkeypatch, merge_rows)
    statements: dict[int, int] = {}
    for holders in (2, 20):
        team = f"t{holders}"
        services = [f"{team}-s{i}" for i in range(holders)]
        await _write(store, "team", {"identifier": team})
        await _write(
            store,
            "svc",
            *(
                {"identifier": svc, "relations": {"owner": team, "deps": services[:i]}}
                for i, svc in enumerate(services)
            ),
        )
        executed: list[str] = []

        def count(
            _conn: Any, _cursor: Any, statement: str, *_: Any, into: list[str] = executed
        ) -> None:
            into.append(statement)

        engine = store.database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            await store.entities.delete_many("team", [team], delete_dependents=False)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        statements[holders] = len(executed)
        for i, svc in enumerate(services):  # the owner cleared, the rest kept
            relations = (await store.entities.get("svc", svc)).relations
            assert relations == {"owner": None, "deps": services[:i]}
        assert await _pointing_at(store, "team", team) == []
    await _assert_index_holds_the_merged_rows(store)
    assert statements[20] == statements[2]


async def _wait_for_copies(store: Store, expected: set[tuple[str, ...]]) -> None:
    async with asyncio.timeout(10):
        while await _copies(store) != expected:
            await asyncio.sleep(0.02)


async def test_rows_not_merged_are_merged_in_steps_once_the_store_is_idle(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relation_targets, "IDLE_STEP_ROWS", 1)
    monkeypatch.setattr(relation_targets, "IDLE_SECONDS", 1.0)
    await _write(store, "team", {"identifier": "t1"})
    for n in range(3):
        await _write(store, "svc", {"identifier": f"s{n}", "relations": {"owner": "t1"}})
    written = await _store_version(store)
    assert written is not None
    async with _merging_when_idle(store):
        await asyncio.sleep(0.2)
        assert await _copies(store) == set()  # the last write ended less than a second ago
        await _wait_for_copies(store, {("s0",), ("s1",), ("s2",)})
        assert await _store_version(store) == written + 3  # one step per write, nothing else
        monkeypatch.setattr(relation_targets, "IDLE_SECONDS", 0.05)
        await _write(store, "svc", {"identifier": "s3", "relations": {"owner": "t1"}})
        await _wait_for_copies(store, {("s0",), ("s1",), ("s2",), ("s3",)})
    await _assert_index_holds_the_merged_rows(store)


async def test_no_step_is_merged_while_another_process_writes(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relation_targets, "IDLE_SECONDS", 1.0)
    await _write_s1_owned_by_t1(store)
    other = await open_store(database_url, base_url="http://b")
    try:
        async with _merging_when_idle(store):
            for n in range(20):  # 2 s of writes 0.1 s apart, none of them by this process
                await _write(other, "team", {"identifier": f"u{n}"})
                await asyncio.sleep(0.1)
            assert await _copies(store) == set()
            await _wait_for_copies(store, {("s1",)})
    finally:
        await other.close()


async def test_a_failed_merge_is_logged_and_tried_again(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(relation_targets, "IDLE_SECONDS", 0.01)
    await _write_s1_owned_by_t1(store)
    step = relation_targets.Relations._merge_step
    failures = [RuntimeError("disk on fire")]

    async def failing_once(self: relation_targets.Relations, *args: Any) -> None:
        if failures:
            raise failures.pop()
        await step(self, *args)

    monkeypatch.setattr(relation_targets.Relations, "_merge_step", failing_once)
    async with _merging_when_idle(store):
        await _wait_for_copies(store, {("s1",)})
    assert "merging relation rows failed; trying again" in caplog.text
    await _assert_index_holds_the_merged_rows(store)


async def test_after_a_turn_that_did_not_fail_a_failure_waits_the_first_pause_again(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # fail, a turn with nothing to merge, fail: both failures pause as long (the first turns
    # that merged nothing used to keep the doubled pause)
    monkeypatch.setattr(relation_targets, "IDLE_SECONDS", 0.01)
    read = store.database.read
    turns = 0

    def failing_read() -> Any:
        nonlocal turns
        turns += 1
        if turns in (1, 3):
            raise RuntimeError("disk on fire")
        return read()

    monkeypatch.setattr(store.database, "read", failing_read)
    async with _merging_when_idle(store):
        async with asyncio.timeout(10):
            while turns < 4:
                await asyncio.sleep(0.01)
    pauses = [
        record.args[0]
        for record in caplog.records
        if "merging relation rows failed" in record.getMessage() and record.args
    ]
    assert pauses == [0.02, 0.02]  # twice the idle pause each time, not 0.02 then 0.04


async def test_a_new_process_merges_the_rows_an_earlier_one_left(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relation_targets, "IDLE_SECONDS", 0.01)
    await _write_s1_owned_by_t1(store)
    later = await open_store(database_url, base_url="http://b")
    try:
        async with _merging_when_idle(later):
            await _wait_for_copies(later, {("s1",)})
    finally:
        await later.close()
    await _assert_index_holds_the_merged_rows(store)


async def test_deletes_read_the_rows_not_merged_until_merging_pays(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relation_targets, "MERGE_BACKLOG", 1_000_000)
    monkeypatch.setattr(relation_targets, "MERGE_AFTER_LOOKUPS", 3)
    await _write(store, "team", *({"identifier": f"t{n}"} for n in range(4)))
    await _write(
        store, "svc", *({"identifier": f"s{n}", "relations": {"owner": f"t{n}"}} for n in range(4))
    )

    for n in range(2):  # found among the rows not merged yet, which stay so
        await store.entities.delete_many("team", [f"t{n}"], delete_dependents=False)
        assert (await store.entities.get("svc", f"s{n}")).relations["owner"] is None
        assert await _copies(store) == set()
    # the third delete merges first: its dependent goes, the one row left is merged
    await store.entities.delete_many("team", ["t2"], delete_dependents=True)
    async with store.database.read() as conn:
        left = set((await conn.execute(select(schema.entities.c.identifier))).scalars())
    assert left == {"t3", "s0", "s1", "s3"}
    assert await _copies(store) == {("s3",)}
    await _assert_index_holds_the_merged_rows(store)


async def test_a_store_from_before_the_reverse_index_gets_it(database_url: str) -> None:
    store = await open_store(database_url, base_url="http://a")
    try:
        await _create_blueprints(store)
        await _write_s1_owned_by_t1(store)
        await undo_migration(
            store,
            "0005_relation_targets",
            "DROP TABLE relation_targets",
            "DROP TABLE relation_targets_merged",
            "DROP INDEX ix_entity_relations_written",
            "ALTER TABLE entity_relations DROP COLUMN written_in",
            "CREATE INDEX ix_entity_relations_target"
            " ON entity_relations (target_blueprint, target_identifier)",
        )
    finally:
        await store.close()
    store = await open_store(database_url, base_url="http://a")  # migrates to 0005 again
    try:
        assert await _pointing_at(store, "team", "t1") == [("owner", "svc", "s1")]
        await _write(store, "svc", {"identifier": "s2", "relations": {"owner": "t1"}})
        assert await _pointing_at(store, "team", "t1") == [
            ("owner", "svc", "s1"),
            ("owner", "svc", "s2"),
        ]
        await _assert_index_holds_the_merged_rows(store)

        def index_names(sync_conn: object) -> set[str]:
            return {index["name"] for index in inspect(sync_conn).get_indexes("entity_relations")}

        async with store.database.read() as conn:
            names = await conn.run_sync(index_names)
        assert "ix_entity_relations_target" not in names
    finally:
        await store.close()
