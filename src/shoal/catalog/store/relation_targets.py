"""Entity relations, and the reverse index that finds the entities pointing at a given one.

``entity_relations`` holds a row per target of every entity's relations, keyed by the entity
that points. Lookups by target (deleting an entity deletes or clears those that point at it; an
entity's page lists them) need the rows ordered by target as well. Kept as a second index of
``entity_relations``, that order made most of the cost of a bulk create in a large catalog: a
batch of 1,000 people adds rows to the runs of ~1,800 targets (their teams, projects, offices),
and each commit rewrites one index page per target. In raw SQLite, 1,000,000 people cost 72 µs
each with that index and 18 µs without it.

So the reverse order is a table of its own, ``relation_targets``, brought up to date in large
steps. Every relation row records the store version of the transaction that wrote it
(``written_in``), and ``relation_targets_merged`` the version up to which every row has been
copied. A merge step copies the oldest rows not merged yet, those of the write transactions
holding the first tens of thousands of them, in target order: each target's page is then
rewritten once per several batches of people instead of once per batch. Merges wait for the
store to be idle (:meth:`Relations.merge_when_idle`, no write for :data:`IDLE_SECONDS`), so
that a resync does not pay for them; only when :data:`MERGE_BACKLOG` rows wait does the write
transaction that adds more merge a step itself.

Lookups by target read ``relation_targets`` and the rows written since the last merge (found
through the ``written_in`` index). Reading those costs a fraction of merging them, but every
lookup pays it again: a delete first merges steps until fewer than :data:`MERGE_ROWS` rows
wait (:meth:`Relations.catch_up`), its write transaction reads the rest, and from the
:data:`MERGE_AFTER_LOOKUPS`-th since a merge left none behind, each merges a step first, so
that a delete phase of many requests merges while a single delete reads. A delete of entities
of a blueprint that no relation points at does neither: nothing can point at them
(:meth:`~shoal.catalog.store.blueprints.BlueprintStore.targets`). Deleting relation rows deletes
their copies too. The invariant: a row is in ``relation_targets`` if and only if it
is in ``entity_relations`` with ``written_in`` at or before the merged version.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import bindparam, delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shoal.catalog.entities import without_value
from shoal.catalog.store import schema
from shoal.catalog.store.changes import Changes
from shoal.catalog.store.database import Database
from shoal.types import JSONObject

__all__ = [
    "IDLE_SECONDS",
    "IDLE_STEP_ROWS",
    "MERGE_AFTER_LOOKUPS",
    "MERGE_BACKLOG",
    "MERGE_ROWS",
    "RelationRow",
    "Relations",
]

log = logging.getLogger(__name__)

MERGE_ROWS = 100_000
"""Relation rows a write transaction's merge step copies into ``relation_targets`` (at least;
whole write transactions): see :data:`MERGE_BACKLOG` and :data:`MERGE_AFTER_LOOKUPS`. Larger
steps rewrite each target's page less often, but hold the write lock longer: ~0.25-0.6 s for
100,000 rows in a catalog of 1,000,000 people on SQLite (raw SQLite, 1,000,000 people: 72 µs
each with a target index on ``entity_relations``, 47 µs merging every 90,000 rows, 39 every
450,000)."""

MERGE_BACKLOG = 500_000
"""Relation rows not merged yet at which a write transaction adding more merges a step itself
rather than leave it for idle time. Lookups read the rows not merged yet (~35 ms per 100,000
in a catalog of 1,000,000 people), so this bounds what they cost: a first resync of 100,000
people (450,000 relation rows) makes no merge step itself."""

IDLE_SECONDS = 0.25
"""How long the store must have written nothing before :meth:`Relations.merge_when_idle`
merges a step."""

IDLE_STEP_ROWS = 25_000
"""Relation rows an idle step copies (at least; whole write transactions): a write that comes
meanwhile waits for it (~60 ms in a catalog of 1,000,000 people on SQLite; a merge costs the
same per row from 25,000 rows up)."""

MAX_RETRY_PAUSE = 30.0
"""Longest pause before :meth:`Relations.merge_when_idle` tries again after a failure."""

MERGE_AFTER_LOOKUPS = 6
"""Write transactions that look up by target before one merges a step first (and so does
every one after it, until none is left). Reading the rows not merged yet costs about a sixth
to a fifteenth of merging them (1,000,000 people on SQLite, 100,000 rows: ~35 ms to read
through the ``written_in`` index, 0.2-0.5 s to merge), so after this many reads, merging would
have cost about as much as they did: at most about twice the cheaper of the two, however many
deletes follow."""

RelationRow = tuple[str, str, str, str, str]
"""``(blueprint, identifier, relation, target_blueprint, target_identifier)``."""

_e = schema.entities
_r = schema.entity_relations
_t = schema.relation_targets
_merged = schema.relation_targets_merged
_NOT_MERGED = _r.c.written_in > select(_merged.c.version).scalar_subquery()
"""The ``entity_relations`` rows not in ``relation_targets`` yet."""
_ROW = ("blueprint", "identifier", "relation", "target_blueprint", "target_identifier")
"""The columns of a :data:`RelationRow`, in its order."""
_KEY = tuple(column.name for column in _t.columns)
"""The same columns in ``relation_targets``' order: target first."""


class Relations:
    """Writes and lookups of ``entity_relations`` that keep ``relation_targets`` in step."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._backlog = 0
        """Relation rows not merged yet, as far as this process knows: those it wrote since it
        last merged (and, once :meth:`merge_when_idle` started, those it found then)."""
        self._lookups = 0
        """Write transactions of this process that looked up by target since it last merged."""

    async def add(self, conn: AsyncConnection, rows: Sequence[RelationRow]) -> None:
        """Insert ``rows`` (existing ones are left as they are), in the write transaction
        ``conn``; merge a step if :data:`MERGE_BACKLOG` rows now wait. The transaction's last
        write of relation rows: rows written after a merge in the same transaction would count
        as copied."""
        if not rows:
            return
        sql, order = self._db.prepared(
            "relations", lambda: self._db.insert(_r).on_conflict_do_nothing()
        )
        assert order == (*_ROW, "written_in")
        version = self._db.writing
        await self._db.insert_rows(conn, sql, [(*row, version) for row in rows])
        self._backlog += len(rows)
        if self._backlog >= MERGE_BACKLOG:
            await self._merge_step(conn, MERGE_ROWS)

    async def catch_up(self) -> None:
        """Merge steps, each in a write transaction of its own (other writes may come between
        them), until fewer than :data:`MERGE_ROWS` rows wait as far as this process knows: for
        a write about to look up by target (a delete), whose lookups would otherwise read up
        to :data:`MERGE_BACKLOG` rows not merged yet."""
        for _ in range(self._backlog // MERGE_ROWS):  # bounded, whatever the estimate
            if self._backlog < MERGE_ROWS:
                break
            async with self._db.write(Changes()) as conn:
                await self._merge_step(conn, MERGE_ROWS)

    async def before_lookups(self, conn: AsyncConnection) -> None:
        """Called by a write transaction ``conn`` that is about to look up by target (and write
        no relation rows after): merges a step first if it is the :data:`MERGE_AFTER_LOOKUPS`-th
        or a later one since the last merge left no row behind."""
        self._lookups += 1
        if self._lookups >= MERGE_AFTER_LOOKUPS:
            await self._merge_step(conn, MERGE_ROWS)

    async def _merge_step(self, conn: AsyncConnection, rows: int) -> None:
        """Copy the oldest rows not merged yet, those of the write transactions that hold the
        first ``rows`` of them, into ``relation_targets`` in target order, and record them as
        merged; in the write transaction ``conn``, which must write no relation rows after
        this (they would count as copied)."""
        last = (
            await conn.execute(
                select(_r.c.written_in)
                .where(_NOT_MERGED)
                .order_by(_r.c.written_in)
                .offset(rows - 1)
                .limit(1)
            )
        ).scalar()
        newer = select(*(_r.c[name] for name in _KEY)).where(_NOT_MERGED)
        if last is not None:
            newer = newer.where(_r.c.written_in <= last)
        copied = await conn.execute(
            self._db.insert(_t)
            .from_select(list(_KEY), newer.order_by(*(_r.c[name] for name in _KEY)))
            .on_conflict_do_nothing()
        )
        version = self._db.writing if last is None else last
        await conn.execute(update(_merged).values(version=version))
        if last is None:  # none left
            self._backlog = self._lookups = 0
        else:
            self._backlog = max(0, self._backlog - max(0, copied.rowcount))

    async def merge_when_idle(self) -> None:
        """Merge the rows not merged yet, :data:`IDLE_STEP_ROWS` at a time, whenever the store
        has written nothing for :data:`IDLE_SECONDS` (nor has any other process sharing the
        database); until cancelled. Counts the rows earlier processes left first."""
        counted = False
        seen: int | None = None  # the store version last read ...
        since = time.monotonic()  # ... and since when it has been

        async def turn() -> float:
            """Look at the store, merge a step if it is idle; the pause before the next turn."""
            nonlocal counted, seen, since
            async with self._db.read() as conn:
                if not counted:
                    waiting = select(func.count()).select_from(_r).where(_NOT_MERGED)
                    self._backlog = (await conn.execute(waiting)).scalar_one()
                    counted = True
                if not self._backlog:
                    return IDLE_SECONDS
                version = await self._db.version(conn)
            if version != seen:
                seen, since = version, time.monotonic()
            quiet = min(self._db.idle_for(), time.monotonic() - since)
            if quiet < IDLE_SECONDS:
                return IDLE_SECONDS - quiet
            async with self._db.idle_write(self._db.writes) as step:
                if step is None or seen is None or self._db.writing != seen + 1:
                    since = time.monotonic()  # a write of this process or another came first
                    return IDLE_SECONDS
                await self._merge_step(step, IDLE_STEP_ROWS)
                seen = self._db.writing  # its own write is no activity
            return 0  # the next step at once, unless a write queued meanwhile

        pause = retry = IDLE_SECONDS
        while True:
            await asyncio.sleep(pause)
            try:
                pause = await turn()
            except Exception:  # must not stop the merges for good (nor the catalog)
                pause = retry = min(2 * retry, MAX_RETRY_PAUSE)
                log.exception("merging relation rows failed; trying again in %.1f s", pause)
            else:  # any turn that did not fail, merging or not
                retry = IDLE_SECONDS

    async def remove(
        self, conn: AsyncConnection, blueprint: str, identifiers: Sequence[str]
    ) -> None:
        """Delete the relation rows of the entities ``identifiers`` of ``blueprint``."""
        held = (_r.c.blueprint == blueprint, _r.c.identifier.in_(identifiers))
        copied = select(*(_r.c[name] for name in _KEY)).where(*held)
        await conn.execute(delete(_t).where(tuple_(*(_t.c[name] for name in _KEY)).in_(copied)))
        await conn.execute(delete(_r).where(*held))

    async def remove_relation(self, conn: AsyncConnection, blueprint: str, relation: str) -> None:
        """Delete the rows of one relation of every entity of ``blueprint`` (a blueprint that
        drops the relation or points it at another blueprint)."""
        held = (_r.c.blueprint == blueprint, _r.c.relation == relation)
        copied = select(*(_r.c[name] for name in _KEY)).where(*held)
        await conn.execute(delete(_t).where(tuple_(*(_t.c[name] for name in _KEY)).in_(copied)))
        await conn.execute(delete(_r).where(*held))

    async def remove_rows(self, conn: AsyncConnection, rows: Sequence[RelationRow]) -> None:
        """Delete relation ``rows`` (a statement per table, for all of them)."""
        if not rows:
            return
        values = [{f"row_{k}": v for k, v in zip(_ROW, row, strict=True)} for row in rows]
        for table in (_t, _r):
            matching = (table.c[name] == bindparam(f"row_{name}") for name in _ROW)
            await conn.execute(delete(table).where(*matching), values)

    async def clear(
        self,
        conn: AsyncConnection,
        blueprint: str,
        holders: Mapping[str, JSONObject],
        references: Iterable[tuple[str, str, str]],
    ) -> None:
        """Clear relation values on entities of ``blueprint``, in the write transaction
        ``conn``: each of ``references``, ``(holder, relation, value)``, leaves the relations of
        its holder (``holders``: identifier → relations as stored), in one statement for all
        of them. The rows changed are stamped as written and lose their content digest; their
        relation rows are the caller's to remove (:meth:`remove_rows`)."""
        cleared: dict[str, JSONObject] = {}
        for holder, name, value in references:
            relations = cleared.setdefault(holder, dict(holders[holder]))
            relations[name] = without_value(relations.get(name), value)
        if not cleared:
            return
        clear = (
            _e.update()
            .where(_e.c.blueprint == blueprint, _e.c.identifier == bindparam("holder"))
            .values(relations=bindparam("cleared"), updated_at=self._db.stamp(), content_hash=None)
        )
        values = [{"holder": holder, "cleared": value} for holder, value in cleared.items()]
        await conn.execute(clear, values)

    async def pointing_at(
        self,
        conn: AsyncConnection,
        target_blueprint: str,
        target_identifiers: Sequence[str],
        *,
        limit: int | None = None,
    ) -> list[RelationRow]:
        """The relation rows whose target is one of ``target_identifiers`` of
        ``target_blueprint``, ordered by the entity that points (at most ``limit``).

        Two queries, not one ``UNION``: ordering the union, SQLite would rather walk the whole
        of ``entity_relations`` in key order than the few rows after the merged version. The
        rows not merged yet are read first: outside a write transaction each query sees the
        store as it is then, and a merge committing between the two only moves rows into
        ``relation_targets``, which the second reads (a row read twice counts once).
        """
        copies = (
            select(*(_t.c[name] for name in _ROW))
            .where(
                _t.c.target_blueprint == target_blueprint,
                _t.c.target_identifier.in_(target_identifiers),
            )
            .order_by(_t.c.blueprint, _t.c.identifier, _t.c.relation)
            .limit(limit)
        )
        recent = select(*(_r.c[name] for name in _ROW)).where(
            _NOT_MERGED,
            _r.c.target_blueprint == target_blueprint,
            _r.c.target_identifier.in_(target_identifiers),
        )
        found: set[RelationRow] = {
            (row[0], row[1], row[2], row[3], row[4])
            for query in (recent, copies)
            for row in await conn.execute(query)
        }
        rows = sorted(found)
        return rows if limit is None else rows[:limit]
