"""Entity storage: bulk upsert with server-side resolution, deletes, search and paging.

A bulk write is computed in full (parse, resolve search identifiers and relations, merge,
validate, check relation targets) before anything is written, and written in one transaction:
the valid entities of a batch are stored, the invalid ones are reported per index, and nothing
is ever half-written.
"""

from __future__ import annotations

import base64
import contextlib
import functools
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from jsonschema.protocols import Validator
from sqlalchemy import bindparam, delete, func, literal_column, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from shoal.catalog.blueprints import PropertyCheck
from shoal.catalog.entities import (
    Entity,
    EntityInput,
    datasource_owner,
    merge_entity,
    parse_entity_input,
    project,
    relation_targets,
    validate_entity,
)
from shoal.catalog.search import Query, Rule, matches, parse_query, prefilter
from shoal.catalog.store import schema
from shoal.catalog.store.blueprints import BlueprintStore
from shoal.catalog.store.changes import Changes, EntityKey
from shoal.catalog.store.database import (
    IN_LIST_CHUNK,
    Database,
    chunks,
    key_chunks,
    statement_size,
)
from shoal.catalog.store.lookups import among, existing_keys, identifier_names, select_in
from shoal.catalog.store.relation_targets import RelationRow, Relations
from shoal.content_digest import body_digest, may_repeat, row_digester
from shoal.errors import CatalogError, ConflictError, InvalidInputError, NotFoundError
from shoal.types import JSONObject

__all__ = ["BulkResult", "Deletion", "EntityStore", "WriteOptions"]

_e = schema.entities


@dataclass(frozen=True, slots=True)
class WriteOptions:
    create_only: bool = False
    """Refuse an entity that exists (``409 identifier_taken``) instead of updating it."""
    merge: bool = True
    create_missing_related_entities: bool = False
    validation_only: bool = False
    datasource: str | None = None
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class Deletion:
    """What a delete removed: the identifiers asked for that were deleted, and the entities
    deleted with them because they related to them (``delete_dependents``)."""

    identifiers: list[str]
    dependents: list[EntityKey]


@dataclass(slots=True)
class BulkResult:
    entities: list[JSONObject] = field(default_factory=list)
    errors: list[JSONObject] = field(default_factory=list)
    stored: dict[int, Entity] = field(default_factory=dict)


class _SearchNeededError(Exception):
    """A batch whose plan cannot record what it read (it resolves searches)."""


@dataclass(slots=True)
class _Plan:
    """A bulk write as computed from what the store held, and what it read to compute it."""

    blueprint: JSONObject
    options: WriteOptions
    result: BulkResult = field(default_factory=BulkResult)
    version: int | None = None
    """The store version the plan read at (see :mod:`.changes`)."""
    probed: list[str] = field(default_factory=list)
    """The batch's identifiers, looked up in the store ..."""
    versions: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    """... and ``(updated_at, content_hash)`` of those whose rows the plan saw."""
    wanted: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    """Relation targets outside the batch, looked up (each with the positions, among the merged
    entities, of those that point at it) ..."""
    found: set[tuple[str, str]] = field(default_factory=set)
    """... and those that exist."""
    inside: dict[str, list[int]] = field(default_factory=dict)
    """Relation targets written by the batch itself (identifiers of its blueprint), each with
    the positions of the merged entities that point at it."""
    target_blueprints: dict[str, bool] = field(default_factory=dict)
    """Whether the blueprint of each missing target exists."""
    same: dict[int, str] = field(default_factory=dict)
    """Index → identifier of the bodies that repeat the write that produced their row."""
    stored: list[tuple[int, Entity, bool]] = field(default_factory=list)
    """``(index, entity, created)`` of the entities to write."""
    unchanged: set[int] = field(default_factory=set)
    """Indexes of stored entities whose content is what their row holds."""
    existing: dict[str, Entity] = field(default_factory=dict)
    targets: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)
    """By ``id()`` of each stored entity, what :func:`relation_targets` gave for it."""
    to_create: list[Entity] = field(default_factory=list)
    row_digests: dict[str, str | None] = field(default_factory=dict)
    entity_rows: list[list[Any]] = field(default_factory=list)
    """``entities`` rows of the changed entities, their timestamps left to the write ..."""
    stale_relations: list[str] = field(default_factory=list)
    """... identifiers whose ``entity_relations`` rows are replaced ..."""
    relation_rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    """... and the ``entity_relations`` rows to insert."""


def _error(index: int, identifier: str, exc: CatalogError) -> JSONObject:
    return {
        "index": index,
        "identifier": identifier,
        "statusCode": exc.status,
        "error": exc.code,
        "message": exc.message,
    }


def row_to_entity(row: Any) -> Entity:
    return Entity(
        blueprint=row.blueprint,
        identifier=row.identifier,
        title=row.title,
        icon=row.icon,
        team=row.team,
        properties=row.properties,
        relations=row.relations,
        datasource=row.datasource,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        updated_by=row.updated_by,
    )


_IDENTIFIER = _e.columns.keys().index("identifier")
_CREATED_AT = _e.columns.keys().index("created_at")
_UPDATED_AT = _e.columns.keys().index("updated_at")
_CONTENT_HASH = _e.columns.keys().index("content_hash")


def _stored_entity(row: Sequence[Any]) -> Entity:
    """An entity from the values of an ``entities`` row, in column order (JSON as text)."""
    values = dict(zip(_e.columns.keys(), row, strict=True))
    del values["content_hash"]
    for name in ("team", "properties", "relations"):
        values[name] = orjson.loads(values[name])
    return Entity(**values)


def _entity_row(entity: Entity) -> JSONObject:
    return {
        "blueprint": entity.blueprint,
        "identifier": entity.identifier,
        "title": entity.title,
        "icon": entity.icon,
        "team": entity.team,
        "properties": entity.properties,
        "relations": entity.relations,
        "datasource": entity.datasource,
        "created_at": entity.created_at,
        "updated_at": entity.updated_at,
        "created_by": entity.created_by,
        "updated_by": entity.updated_by,
    }


FEW_UPDATED_BEFORE = 10_000
"""Up to this many entities last updated before a listing's ``before``, SQLite lists them from
the ``updated_at`` index, each page reading and sorting all of them; past it, every page walks
on in key order, which reads the table once in all (see :meth:`EntityStore._few_before`)."""

_UNINDEXED_KEY_ORDER: tuple[Any, ...] = (
    literal_column("+entities.blueprint"),
    literal_column("+entities.identifier"),
)
"""Key order spelt so that SQLite cannot read it from the key's index (unary ``+`` is a no-op
that hides the column from the planner's choice of index)."""


_ENTITY_COLUMNS = tuple(column.name for column in _e.columns)


def _json_text(value: Any) -> str:
    """What :class:`~shoal.catalog.store.schema.JSONText` stores for ``value``."""
    return orjson.dumps(value).decode()


def encode_cursor(blueprint: str, identifier: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([blueprint, identifier])).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        blueprint, identifier = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if (
            isinstance(blueprint, str)
            and isinstance(identifier, str)
            and "\x00" not in blueprint + identifier
        ):
            return blueprint, identifier
    except (ValueError, TypeError, orjson.JSONDecodeError):
        pass
    message = f"cursor {cursor!r} is not one this server issued"
    raise InvalidInputError(message)


class EntityStore:
    def __init__(
        self, database: Database, blueprints: BlueprintStore, relations: Relations
    ) -> None:
        self._db = database
        self._blueprints = blueprints
        self._relations = relations

    # --- reads -------------------------------------------------------------------------------

    async def get(self, blueprint: str, identifier: str) -> Entity:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(_e).where(_e.c.blueprint == blueprint, _e.c.identifier == identifier)
                )
            ).first()
        if row is None:
            message = f"entity {identifier!r} of blueprint {blueprint!r} was not found"
            raise NotFoundError(message)
        return row_to_entity(row)

    async def count(self, blueprint: str | None = None) -> int:
        query = select(func.count()).select_from(_e)
        if blueprint is not None:
            query = query.where(_e.c.blueprint == blueprint)
        async with self._db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def _fetch(
        self, conn: AsyncConnection, blueprint: str, identifiers: Sequence[str]
    ) -> dict[str, Entity]:
        rows = await self._fetch_rows(conn, blueprint, identifiers)
        return {entity.identifier: entity for entity, _ in rows}

    async def _fetch_rows(
        self, conn: AsyncConnection, blueprint: str, identifiers: Sequence[str]
    ) -> list[tuple[Entity, tuple[int, str | None]]]:
        """The stored entities among ``identifiers``, each with its ``(updated_at,
        content_hash)``."""
        rows = await select_in(self._db, conn, tuple(_e.columns), blueprint, identifiers)
        return [(_stored_entity(row), (row[_UPDATED_AT], row[_CONTENT_HASH])) for row in rows]

    async def search(
        self,
        query: Query,
        *,
        include: list[str] | None = None,
        limit: int | None = None,
        conn: AsyncConnection | None = None,
    ) -> list[JSONObject]:
        found = [e.to_json() async for e in self.iter_matching(query, limit=limit, conn=conn)]
        return [project(entity, include) for entity in found]

    async def iter_matching(
        self, query: Query, *, limit: int | None = None, conn: AsyncConnection | None = None
    ) -> AsyncIterator[Entity]:
        """Entities matching ``query``: SQL narrows by indexed columns, :func:`matches` decides."""
        hints = prefilter(query)
        if hints.empty:
            return
        conditions: list[Any] = []
        for column, values in (
            (_e.c.identifier, hints.identifiers),
            (_e.c.blueprint, hints.blueprints),
        ):
            if values is None:
                continue
            if not values:
                return
            if len(values) <= IN_LIST_CHUNK:  # longer lists would overflow the parameter bound
                conditions.append(column.in_(sorted(values)))
        conditions.extend(_e.c.datasource.like(p, escape="\\") for p in hints.datasource_like)
        if hints.updated_before is not None:
            conditions.append(_e.c.updated_at <= hints.updated_before)
        if hints.updated_after is not None:
            conditions.append(_e.c.updated_at >= hints.updated_after)
        statement = select(_e).where(*conditions).order_by(_e.c.blueprint, _e.c.identifier)
        produced = 0
        async with self._maybe_conn(conn) as active:
            last: tuple[str, str] | None = None
            while True:  # keyset pages: bounded memory on both engines
                page_statement = statement
                if last is not None:
                    page_statement = statement.where(tuple_(_e.c.blueprint, _e.c.identifier) > last)
                rows = (await active.execute(page_statement.limit(2000))).all()
                for row in rows:
                    entity = row_to_entity(row)
                    if matches(query, entity.get_field):
                        yield entity
                        produced += 1
                        if limit is not None and produced >= limit:
                            return
                if len(rows) < 2000:
                    return
                last = (rows[-1].blueprint, rows[-1].identifier)

    def _maybe_conn(self, conn: AsyncConnection | None) -> Any:
        if conn is not None:
            return contextlib.nullcontext(conn)
        return self._db.read()

    async def datasource_page(
        self,
        *,
        prefix: str,
        suffix: str,
        before: int | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[JSONObject], str | None]:
        """Entities whose datasource starts with ``prefix`` and ends with ``suffix``."""
        from shoal.catalog.search import MAX_DATASOURCE, like_escape

        if len(prefix) + len(suffix) > MAX_DATASOURCE:
            return [], None  # no stored datasource is that long (SQLite refuses such patterns)

        pattern = f"{like_escape(prefix)}%{like_escape(suffix)}"
        conditions: list[Any] = [_e.c.datasource.like(pattern, escape="\\")]
        if before is not None:
            conditions.append(_e.c.updated_at < before)
        if cursor:
            conditions.append(tuple_(_e.c.blueprint, _e.c.identifier) > decode_cursor(cursor))
        async with self._db.read() as conn:
            order: tuple[Any, ...] = (_e.c.blueprint, _e.c.identifier)
            if before is not None and self._db.is_sqlite and await self._few_before(conn, before):
                order = _UNINDEXED_KEY_ORDER
            statement = (
                select(_e.c.blueprint, _e.c.identifier, _e.c.datasource)
                .where(*conditions)
                .order_by(*order)
                .limit(limit + 1)
            )
            rows = (await conn.execute(statement)).all()
        # LIKE with a prefix and a suffix can overlap ("ab" matches "a%b" only once it is >= 2
        # characters); check in Python to be exact.
        page = [
            {"identifier": r.identifier, "blueprint": r.blueprint}
            for r in rows[:limit]
            if r.datasource.startswith(prefix)
            and r.datasource.endswith(suffix)
            and len(r.datasource) >= len(prefix) + len(suffix)
        ]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(last.blueprint, last.identifier)
        return page, next_cursor

    async def _few_before(self, conn: AsyncConnection, before: int) -> bool:
        """Whether at most :data:`FEW_UPDATED_BEFORE` entities were last updated before
        ``before`` (counted in the ``updated_at`` index, stopping past that many).

        A delete phase lists the owned entities last updated before its run started: after a
        resync that saw them all, none. Asked for them in key order, SQLite walks the whole
        table in that order (0.5 s for 1,000,000 entities) rather than take the few from the
        ``updated_at`` index and sort them (under a millisecond); when they are many, walking
        in key order is what keeps a listing of all of them, page by page, linear.
        """
        few = select(_e.c.updated_at).where(_e.c.updated_at < before).limit(FEW_UPDATED_BEFORE + 1)
        counted = select(func.count()).select_from(few.subquery())
        return int((await conn.execute(counted)).scalar_one()) <= FEW_UPDATED_BEFORE

    async def page(
        self,
        blueprint: str,
        *,
        offset: int = 0,
        limit: int = 50,
        sort: str = "identifier",
        descending: bool = False,
        text: str | None = None,
    ) -> tuple[list[Entity], int]:
        """A page of one blueprint's entities for browsing, plus the total match count."""
        columns = {"identifier": _e.c.identifier, "title": _e.c.title, "updatedAt": _e.c.updated_at}
        column = columns.get(sort, _e.c.identifier)
        conditions: list[Any] = [_e.c.blueprint == blueprint]
        if text:
            from shoal.catalog.search import like_escape

            pattern = f"%{like_escape(text)}%"
            conditions.append(  # ignoring case on both engines (SQLite: ASCII letters)
                or_(
                    _e.c.identifier.ilike(pattern, escape="\\"),
                    _e.c.title.ilike(pattern, escape="\\"),
                )
            )
        if column is _e.c.title:  # untitled first (last descending) on both engines, as
            # SQLite's index has it; PostgreSQL's index is made so (migration 0007)
            order = column.desc().nulls_last() if descending else column.asc().nulls_first()
        else:
            order = column.desc() if descending else column.asc()
        async with self._db.read() as conn:
            total = (
                await conn.execute(select(func.count()).select_from(_e).where(*conditions))
            ).scalar_one()
            rows = await conn.execute(
                select(_e)
                .where(*conditions)
                .order_by(order, _e.c.identifier)
                .offset(offset)
                .limit(limit)
            )
            return [row_to_entity(row) for row in rows], int(total)

    async def related(self, blueprint: str, identifier: str) -> list[tuple[str, str, str]]:
        """``(relation, blueprint, identifier)`` of entities that point at this one."""
        async with self._db.read() as conn:
            if blueprint not in await self._blueprints.targets(conn):
                return []  # no relation points at its entities
            rows = await self._relations.pointing_at(conn, blueprint, [identifier], limit=500)
        return [(relation, bp, holder) for bp, holder, relation, _, _ in rows]

    # --- writes ------------------------------------------------------------------------------

    async def upsert(
        self,
        blueprint_id: str,
        bodies: Sequence[Any],
        options: WriteOptions,
        *,
        stored: bool = True,
    ) -> BulkResult:
        """Write a batch of entities of one blueprint (see module docstring).

        The batch is planned before the write lock is taken, from what the store holds then,
        so that planning overlaps the writes of the batch ahead; under the lock, the plan is
        applied only if everything it read still holds (:meth:`_holds`), and planned again
        otherwise. Batches that resolve search identifiers or query relations are planned
        under the lock.

        With ``stored=False`` the result's ``stored`` map may leave out entities that the batch
        found unchanged (the bulk route reports outcomes only, and reading them back costs).
        """
        plan: _Plan | None = None
        read: set[EntityKey] = set()
        with contextlib.suppress(_SearchNeededError):
            async with self._db.read() as conn:
                version = await self._db.version(conn)
                blueprint = await self._blueprints.get(blueprint_id, conn)
                plan = await self._plan(conn, blueprint, bodies, options, speculative=True)
                plan.version = version
            read = _read_keys(plan)  # here, not in the locked section
        changes = Changes()
        async with self._db.write(changes) as conn:
            if plan is None or not (
                self._db.untouched(plan.version, read) or await self._holds(conn, plan)
            ):
                blueprint = await self._blueprints.get(blueprint_id, conn)
                plan = await self._plan(conn, blueprint, bodies, options)
            result = await self._apply(conn, plan, want_stored=stored)
            _note_changes(plan, changes)
            return result

    async def confirm_unchanged(
        self, blueprint_id: str, items: Sequence[tuple[str, str]], options: WriteOptions
    ) -> list[int]:
        """Positions of the ``(identifier, body digest)`` items that would write nothing new.

        An upsert of the body behind such an item would only stamp updatedAt (its row was
        written by that very body, under the same blueprint and options: see
        :mod:`shoal.content_digest`), so that is what happens to it here. Clients send digests
        first and bodies only for the rest (a Shoal extension). An identifier that occurs more
        than once is never confirmed.
        """
        counts = Counter(identifier for identifier, _ in items)
        # Read first, on a reader connection: when nothing is confirmed (a first resync, say)
        # there is nothing to stamp, and the question never queues for the write lock.
        async with self._db.read() as conn:
            version = await self._db.version(conn)
            blueprint = await self._blueprints.get(blueprint_id, conn)
            same = await self._same_digests(conn, blueprint, items, counts, options)
        if not same or options.validation_only:
            return same
        read = {(blueprint_id, identifier) for identifier in counts}
        changes = Changes()
        async with self._db.write(changes) as conn:
            if not self._db.untouched(version, read):  # a write since may have changed them
                blueprint = await self._blueprints.get(blueprint_id, conn)
                same = await self._same_digests(conn, blueprint, items, counts, options)
            if same:
                identifiers = [items[position][0] for position in same]
                await self._stamp(conn, blueprint_id, identifiers, self._db.stamp(), options.actor)
                changes.entities.update((blueprint_id, identifier) for identifier in identifiers)
        return same

    async def _same_digests(
        self,
        conn: AsyncConnection,
        blueprint: JSONObject,
        items: Sequence[tuple[str, str]],
        counts: Counter[str],
        options: WriteOptions,
    ) -> list[int]:
        """:meth:`confirm_unchanged`'s answer, from what ``conn`` reads."""
        bp = blueprint["identifier"]
        versions = await self._stored_versions(conn, bp, list(counts))
        present = {identifier: digest for identifier, (_, digest) in versions.items()}
        row_digest = row_digester(_write_key(blueprint, options))
        return [
            position
            for position, (identifier, digest) in enumerate(items)
            if counts[identifier] == 1 and present.get(identifier) == row_digest(digest)
        ]

    async def _plan(
        self,
        conn: AsyncConnection,
        blueprint: JSONObject,
        bodies: Sequence[Any],
        options: WriteOptions,
        *,
        speculative: bool = False,
    ) -> _Plan:
        """Compute a bulk write from what ``conn`` reads, recording what it read.

        Timestamps are left to :meth:`_apply`. With ``speculative``, raises
        :class:`_SearchNeededError` as soon as the batch needs a search, whose reads the plan
        cannot record.
        """
        bp = blueprint["identifier"]
        plan = _Plan(blueprint, options)
        result = plan.result

        # 0. a body identical to the write that produced its row changes nothing but updatedAt:
        #    recognised by the row's content_hash alone, without reading, merging or validating
        # (not for creates only: an identical body of an existing entity is refused)
        digests = None if options.create_only else _digests(bodies, _write_key(blueprint, options))
        present: dict[str, str | None] | None = None
        same = plan.same
        if digests is None:
            if speculative:
                raise _SearchNeededError
        else:
            plan.probed = [body["identifier"] for body in bodies]
            plan.versions = await self._stored_versions(conn, bp, plan.probed)
            present = {identifier: digest for identifier, (_, digest) in plan.versions.items()}
            for index, body in enumerate(bodies):
                if digests[index] is not None and present.get(body["identifier"]) == digests[index]:
                    same[index] = body["identifier"]

        # 1. parse and resolve every input; failures are reported per index
        resolved: list[tuple[int, str, EntityInput]] = []
        for index, shown, parsed in _parse_inputs(bodies, same, bp):
            if isinstance(parsed, CatalogError):
                result.errors.append(_error(index, shown, parsed))
                continue
            if isinstance(parsed.identifier, str) and not parsed.searches():
                resolved.append((index, parsed.identifier, parsed))
                continue
            if speculative:
                raise _SearchNeededError
            try:
                identifier = await self._resolve_identifier(conn, bp, parsed.identifier)
                await self._resolve_queries(conn, blueprint, parsed)
            except CatalogError as exc:
                result.errors.append(_error(index, shown, exc))
                continue
            resolved.append((index, identifier, parsed))

        # 2. merge over what is stored (and over earlier items of this batch), then validate
        lookup = [identifier for _, identifier, _ in resolved]
        if present is not None:  # only string identifiers: we know which rows exist
            lookup = [identifier for identifier in lookup if identifier in present]
        rows = await self._fetch_rows(conn, bp, lookup)
        plan.existing = {entity.identifier: entity for entity, _ in rows}
        for identifier in lookup:  # the versions the merge saw (reads may not share a snapshot)
            plan.versions.pop(identifier, None)
        plan.versions.update((entity.identifier, version) for entity, version in rows)
        validator = self._blueprints.validator(blueprint)
        check = self._blueprints.property_check(blueprint)
        merged = _merge(plan, resolved, validator, check)

        # 3. relation targets must exist, or be created as bare entities when asked to
        plan.found = await existing_keys(self._db, conn, plan.wanted)
        for target, _ in plan.wanted.keys() - plan.found:
            if target not in plan.target_blueprints:
                known = await self._blueprints.find(target, conn) is not None
                plan.target_blueprints[target] = known
        _settle(plan, merged, digests)
        return plan

    async def _holds(self, conn: AsyncConnection, plan: _Plan) -> bool:
        """Whether ``conn`` reads what ``plan`` was computed from: then planning again would
        give the same plan. Every entity write stamps a fresh ``updated_at``
        (:meth:`Database.stamp`), so a row whose ``(updated_at, content_hash)`` is unchanged is
        unchanged."""
        bp = plan.blueprint["identifier"]
        if await self._blueprints.get(bp, conn) != plan.blueprint:
            return False
        if plan.probed and await self._stored_versions(conn, bp, plan.probed) != plan.versions:
            return False
        if plan.wanted and await existing_keys(self._db, conn, plan.wanted) != plan.found:
            return False
        for target, known in plan.target_blueprints.items():
            if (await self._blueprints.find(target, conn) is not None) != known:
                return False
        return True

    async def _apply(self, conn: AsyncConnection, plan: _Plan, *, want_stored: bool) -> BulkResult:
        """Write ``plan`` (unless only validating) and report its outcome."""
        result, options, same = plan.result, plan.options, plan.same
        bp = plan.blueprint["identifier"]
        now = self._db.stamp()
        for _, entity, created in plan.stored:
            entity.updated_at = now
            if created:
                entity.created_at = now
        for entity in plan.to_create:
            entity.created_at = entity.updated_at = now

        if not options.validation_only:
            touched = [entity for index, entity, _ in plan.stored if index in plan.unchanged]
            if touched:  # same content: stamp the write without rewriting the row
                stamp = (
                    _e.update()
                    .where(_e.c.blueprint == bindparam("b_blueprint"))
                    .where(_e.c.identifier == bindparam("b_identifier"))
                    .values(
                        updated_at=bindparam("b_at"),
                        updated_by=bindparam("b_by"),
                        content_hash=bindparam("b_hash"),
                    )
                )
                rows = [
                    {"b_blueprint": e.blueprint, "b_identifier": e.identifier,
                     "b_at": e.updated_at, "b_by": e.updated_by,
                     "b_hash": plan.row_digests[e.identifier]}
                    for e in touched
                ]  # fmt: skip
                await conn.execute(stamp, rows)
            for row in plan.entity_rows:
                row[_UPDATED_AT] = now
                if row[_IDENTIFIER] not in plan.existing:
                    row[_CREATED_AT] = now
            await self._write(conn, plan)
            if plan.to_create:
                await conn.execute(
                    self._db.insert(_e).on_conflict_do_nothing(),
                    [_entity_row(e) for e in plan.to_create],
                )
            if same:
                await self._stamp(conn, bp, list(same.values()), now, options.actor)
        for index, entity, created in plan.stored:
            outcome = {"index": index, "identifier": entity.identifier, "created": created}
            if index in plan.unchanged:
                outcome["unchanged"] = True
            result.entities.append(outcome)
            result.stored[index] = entity
        if same:
            result.entities.extend(
                {"index": index, "identifier": identifier, "created": False, "unchanged": True}
                for index, identifier in same.items()
            )
            result.entities.sort(key=lambda outcome: outcome["index"])
            if want_stored:
                rows_back = await self._fetch(conn, bp, list(same.values()))
                for index, identifier in same.items():
                    entity = rows_back[identifier]
                    if not options.validation_only:
                        entity.updated_at, entity.updated_by = now, options.actor
                    result.stored[index] = entity
        result.errors.sort(key=lambda error: error["index"])
        return result

    async def _stored_versions(
        self, conn: AsyncConnection, bp: str, identifiers: Sequence[str]
    ) -> dict[str, tuple[int, str | None]]:
        """``identifier → (updated_at, content_hash)`` of the rows of ``identifiers`` that
        exist."""
        columns = (_e.c.identifier, _e.c.updated_at, _e.c.content_hash)
        rows = await select_in(self._db, conn, columns, bp, sorted(set(identifiers)))
        return {identifier: (updated_at, digest) for identifier, updated_at, digest in rows}

    async def _stamp(
        self,
        conn: AsyncConnection,
        bp: str,
        identifiers: Sequence[str],
        now: int,
        actor: str | None,
    ) -> None:
        """Every write sets updatedAt, unchanged ones too (reconciliation's ``before`` relies
        on it, as in Port). A hot statement: prepared in a few sizes (a list is padded with its
        last identifier)."""
        for chunk in chunks(sorted(identifiers)):
            size = statement_size(len(chunk))
            sql, order = self._db.prepared(
                f"stamp {size}", functools.partial(_stamp_statement, size)
            )
            assert order == ("at", "by", "b", *identifier_names(size))
            padding = (chunk[-1],) * (size - len(chunk))
            await conn.exec_driver_sql(sql, (now, actor, bp, *chunk, *padding))

    async def _write(self, conn: AsyncConnection, plan: _Plan) -> None:
        """Store the rows :func:`_rows` prepared for ``plan``."""
        if plan.entity_rows:
            sql, order = self._db.prepared("upsert", self._upsert_statement)
            assert order == _ENTITY_COLUMNS
            await self._db.insert_rows(conn, sql, plan.entity_rows)
        bp = plan.blueprint["identifier"]
        for chunk in chunks(plan.stale_relations):
            await self._relations.remove(conn, bp, chunk)
        await self._relations.add(conn, plan.relation_rows)

    def _upsert_statement(self) -> Any:
        insert = self._db.insert(_e)
        return insert.on_conflict_do_update(
            index_elements=[_e.c.blueprint, _e.c.identifier],
            set_={
                name: insert.excluded[name]
                for name in (
                    "title",
                    "icon",
                    "team",
                    "properties",
                    "relations",
                    "datasource",
                    "updated_at",
                    "updated_by",
                    "content_hash",
                )
            },
        )

    async def _resolve_identifier(
        self, conn: AsyncConnection, bp: str, identifier: str | Query
    ) -> str:
        if isinstance(identifier, str):
            return identifier
        found = [
            e.identifier
            async for e in self.iter_matching(_within(bp, identifier), limit=2, conn=conn)
        ]
        if len(found) != 1:
            message = (
                "the search identifier matched no entity"
                if not found
                else "the search identifier matched more than one entity"
            )
            raise NotFoundError(message)
        return found[0]

    async def _resolve_queries(
        self, conn: AsyncConnection, blueprint: JSONObject, entity: EntityInput
    ) -> None:
        if isinstance(entity.team, Query):
            entity.team = [
                e.identifier
                async for e in self.iter_matching(_within("_team", entity.team), conn=conn)
            ]
        if not entity.relations:
            return
        for name, value in list(entity.relations.items()):
            if not isinstance(value, Query):
                continue
            spec = blueprint["relations"].get(name)
            if spec is None:
                message = (
                    f"relation {name!r} is not defined on blueprint {blueprint['identifier']!r}"
                )
                raise InvalidInputError(message)
            found = [
                e.identifier
                async for e in self.iter_matching(_within(spec["target"], value), conn=conn)
            ]
            if spec["many"]:
                entity.relations[name] = found
            elif len(found) == 1:
                entity.relations[name] = found[0]
            else:
                message = (
                    f"the search query of relation {name!r} matched {len(found)} entities, not one"
                )
                raise NotFoundError(message)

    async def delete_many(
        self,
        blueprint_id: str,
        identifiers: Sequence[str],
        *,
        delete_dependents: bool,
        owner: str | None = None,
    ) -> Deletion:
        """Delete entities; with ``delete_dependents`` also those that relate to them.

        Without it, relations pointing at deleted entities are cleared on their holders.
        With ``owner`` (an integration identifier), only entities whose datasource names that
        integration (see :func:`datasource_owner`) are deleted, dependents included: the
        relations of the others pointing at deleted entities are cleared.
        """
        if blueprint_id in await self._blueprints.targets():  # else no lookups (see below)
            await self._relations.catch_up()
        async with self._db.write() as conn:
            await self._blueprints.get(blueprint_id, conn)
            columns = (_e.c.identifier, _e.c.datasource)
            found = await select_in(self._db, conn, columns, blueprint_id, sorted(set(identifiers)))
            present = {
                identifier
                for identifier, datasource in found
                if owner is None or datasource_owner(datasource) == owner
            }
            doomed: set[tuple[str, str]] = {(blueprint_id, i) for i in present}
            # Entities of a blueprint no relation points at have no dependents and no
            # references to clear: nothing to look up (read again, in the transaction)
            targets = await self._blueprints.targets(conn)
            if present and blueprint_id in targets:
                await self._relations.before_lookups(conn)
                frontier = set(doomed)
                while delete_dependents and frontier:
                    frontier = await self._dependents(conn, frontier, targets) - doomed
                    if owner is not None:
                        frontier = await self._owned(conn, frontier, owner)
                    doomed |= frontier
                if not delete_dependents or owner is not None:
                    await self._clear_references(conn, doomed, targets)
            by_blueprint: dict[str, list[str]] = {}
            for bp, identifier in doomed:
                by_blueprint.setdefault(bp, []).append(identifier)
            for bp, ids in by_blueprint.items():
                for chunk in chunks(sorted(ids)):
                    await conn.execute(
                        delete(_e).where(_e.c.blueprint == bp, _e.c.identifier.in_(chunk))
                    )
                    await self._relations.remove(conn, bp, chunk)
            asked = {(blueprint_id, identifier) for identifier in present}
            return Deletion([i for i in identifiers if i in present], sorted(doomed - asked))

    async def _dependents(
        self, conn: AsyncConnection, keys: set[tuple[str, str]], targets: frozenset[str]
    ) -> set[tuple[str, str]]:
        """The entities pointing at one of ``keys``; ``targets``: the blueprints some
        relation points at."""
        found: set[tuple[str, str]] = set()
        for bp, chunk in key_chunks(keys):
            if bp not in targets:
                continue
            rows = await self._relations.pointing_at(conn, bp, chunk)
            found.update((holder_bp, holder) for holder_bp, holder, _, _, _ in rows)
        return found

    async def _owned(
        self, conn: AsyncConnection, keys: set[tuple[str, str]], owner: str
    ) -> set[tuple[str, str]]:
        """The entities among ``keys`` whose datasource names the integration ``owner``."""
        owned: set[tuple[str, str]] = set()
        for bp, chunk in key_chunks(keys):
            columns = (_e.c.identifier, _e.c.datasource)
            for identifier, datasource in await select_in(self._db, conn, columns, bp, chunk):
                if datasource_owner(datasource) == owner:
                    owned.add((bp, identifier))
        return owned

    async def _clear_references(
        self, conn: AsyncConnection, doomed: set[tuple[str, str]], targets: frozenset[str]
    ) -> None:
        """Clear the relations pointing at ``doomed`` on the entities not ``doomed``;
        ``targets``: the blueprints some relation points at."""
        references: list[RelationRow] = []
        for bp, chunk in key_chunks(doomed):
            if bp in targets:
                rows = await self._relations.pointing_at(conn, bp, chunk)
                references.extend(row for row in rows if row[:2] not in doomed)
        by_blueprint: dict[str, list[RelationRow]] = {}
        for row in references:
            by_blueprint.setdefault(row[0], []).append(row)
        for bp, rows in by_blueprint.items():
            columns = (_e.c.identifier, _e.c.relations)
            found = await select_in(self._db, conn, columns, bp, sorted({row[1] for row in rows}))
            holders = {identifier: orjson.loads(relations) for identifier, relations in found}
            held = (
                (holder, name, value) for _, holder, name, _, value in rows if holder in holders
            )
            await self._relations.clear(conn, bp, holders, held)
        await self._relations.remove_rows(conn, references)

    async def delete_one(
        self,
        blueprint_id: str,
        identifier: str,
        *,
        delete_dependents: bool,
        owner: str | None = None,
    ) -> Deletion:
        deleted = await self.delete_many(
            blueprint_id, [identifier], delete_dependents=delete_dependents, owner=owner
        )
        if not deleted.identifiers:
            message = f"entity {identifier!r} of blueprint {blueprint_id!r} was not found"
            raise NotFoundError(message)
        return deleted


def _parse_inputs(
    bodies: Sequence[Any], same: dict[int, str], bp: str
) -> list[tuple[int, str, EntityInput | CatalogError]]:
    """Each body not in ``same`` parsed, or the error that refuses it: ``(index, shown
    identifier, input or error)``."""
    parsed: list[tuple[int, str, EntityInput | CatalogError]] = []
    for index, body in enumerate(bodies):
        if index in same:
            continue
        try:
            parsed.append((index, _shown_identifier(body), parse_entity_input(body, bp)))
        except CatalogError as exc:
            parsed.append((index, _shown_identifier(body), exc))
    return parsed


def _merge(
    plan: _Plan,
    resolved: list[tuple[int, str, EntityInput]],
    validator: Validator,
    check: PropertyCheck,
) -> list[tuple[int, Entity, bool]]:
    """Merge each input over its stored row (or an earlier item of the batch) and validate it.

    Returns ``(index, entity, created)`` of the valid ones; notes their relation targets in
    ``plan.targets`` and, for targets outside the batch, ``plan.wanted``.
    """
    blueprint, options, existing = plan.blueprint, plan.options, plan.existing
    bp = blueprint["identifier"]
    pending: dict[str, Entity] = {}
    merged: list[tuple[int, Entity, bool]] = []
    for index, identifier, entity_input in resolved:
        current = pending.get(identifier) or existing.get(identifier)
        if options.create_only and current is not None:
            message = f"entity {identifier!r} already exists; use upsert=true"
            taken = ConflictError(message, code="identifier_taken")
            plan.result.errors.append(_error(index, identifier, taken))
            continue
        entity = merge_entity(current, entity_input, identifier, blueprint, merge=options.merge)
        try:
            validate_entity(entity, blueprint, validator, check)
        except CatalogError as exc:
            plan.result.errors.append(_error(index, identifier, exc))
            continue
        entity.datasource = options.datasource
        if current is not None and current.same_content(entity):
            # Reported as unchanged, but still stamped: every write sets updatedAt, which
            # reconciliation's ``before`` filter relies on (Port's contract).
            plan.unchanged.add(index)
        entity.updated_by = options.actor
        if current is None:
            entity.created_by = options.actor
        pending[identifier] = entity
        merged.append((index, entity, identifier not in existing))
    wanted, inside = plan.wanted, plan.inside
    for position, (_, entity, _) in enumerate(merged):
        plan.targets[id(entity)] = entity_targets = list(relation_targets(entity, blueprint))
        for _, target, target_id in entity_targets:
            if target == bp and target_id in pending:
                inside.setdefault(target_id, []).append(position)
            else:
                wanted.setdefault((target, target_id), []).append(position)
    return merged


def _settle(
    plan: _Plan,
    merged: list[tuple[int, Entity, bool]],
    digests: list[str | None] | None,
) -> None:
    """Finish ``plan`` once its relation targets are known: refuse the entities whose targets
    are missing (or plan those targets as bare entities, when asked to), note the digest each
    row keeps and prepare the rows."""
    options, wanted = plan.options, plan.wanted
    failed_positions: dict[int, CatalogError] = {}
    creatable: list[tuple[str, str]] = []
    for target, target_id in sorted(wanted.keys() - plan.found):
        if options.create_missing_related_entities and plan.target_blueprints[target]:
            creatable.append((target, target_id))
            continue
        message = f"related entity {target_id!r} of blueprint {target!r} does not exist"
        for position in wanted[(target, target_id)]:
            failed_positions.setdefault(position, NotFoundError(message))
    _refuse_pointing_at_refused(plan, merged, failed_positions)
    for position, (index, entity, created) in enumerate(merged):
        if position in failed_positions:
            plan.result.errors.append(_error(index, entity.identifier, failed_positions[position]))
        else:
            plan.stored.append((index, entity, created))
    # create only the targets some stored entity still points at
    plan.to_create = [
        Entity(
            target,
            target_id,
            title=target_id,
            datasource=options.datasource,
            created_by=options.actor,
            updated_by=options.actor,
        )
        for target, target_id in creatable
        if any(p not in failed_positions for p in wanted[(target, target_id)])
    ]
    # the digest a row keeps: that of the one body that wrote it (none if several did)
    written: dict[str, int] = {}
    for index, entity, _ in plan.stored:
        written[entity.identifier] = -1 if entity.identifier in written else index
    plan.row_digests = {
        identifier: digests[index] if digests is not None and index >= 0 else None
        for identifier, index in written.items()
    }
    _rows(plan)


def _refuse_pointing_at_refused(
    plan: _Plan, merged: list[tuple[int, Entity, bool]], failed: dict[int, CatalogError]
) -> None:
    """Add to ``failed`` the entities that point at a target of the batch that is not stored
    and that the batch does not write after all (every write of it refused), and so on along
    chains of them: none may be stored pointing at an entity that does not exist."""
    if not plan.inside:
        return
    positions: dict[str, list[int]] = {}
    for position, (_, entity, _) in enumerate(merged):
        positions.setdefault(entity.identifier, []).append(position)
    bp = plan.blueprint["identifier"]
    refused = True
    while refused:
        refused = False
        for target_id, pointing in plan.inside.items():
            if target_id in plan.existing or not all(p in failed for p in positions[target_id]):
                continue
            message = f"related entity {target_id!r} of blueprint {bp!r} does not exist"
            for position in pointing:
                if position not in failed:
                    failed[position] = NotFoundError(message)
                    refused = True


def _rows(plan: _Plan) -> None:
    """Prepare the rows that store ``plan``'s changed entities (all but their timestamps)."""
    changed = [entity for index, entity, _ in plan.stored if index not in plan.unchanged]
    latest = {entity.identifier: entity for entity in changed}  # the last write in a batch wins
    existing, digests, dumps = plan.existing, plan.row_digests, _json_text
    plan.entity_rows = [
        [
            e.blueprint,
            e.identifier,
            e.title,
            e.icon,
            dumps(e.team),
            dumps(e.properties),
            dumps(e.relations),
            e.datasource,
            e.created_at,
            e.updated_at,
            e.created_by,
            e.updated_by,
            digests.get(e.identifier),
        ]
        for e in latest.values()
    ]
    relinked = [
        entity
        for identifier, entity in latest.items()
        if identifier not in existing or existing[identifier].relations != entity.relations
    ]
    plan.stale_relations = [
        e.identifier
        for e in relinked
        if e.identifier in existing and existing[e.identifier].relations
    ]
    bp = plan.blueprint["identifier"]
    plan.relation_rows = [
        (bp, entity.identifier, name, target, target_id)
        for entity in relinked
        for name, target, target_id in plan.targets[id(entity)]
    ]


def _stamp_statement(size: int) -> Any:
    """``UPDATE`` of ``updated_at`` and ``updated_by`` for ``size`` identifiers of a blueprint."""
    return (
        _e.update()
        .where(*among(size))
        .values(updated_at=bindparam("at"), updated_by=bindparam("by"))
    )


def _read_keys(plan: _Plan) -> set[EntityKey]:
    """The entity rows a speculative plan read (its blueprints aside)."""
    bp = plan.blueprint["identifier"]
    read = {(bp, identifier) for identifier in plan.probed}
    read.update(plan.wanted)
    return read


def _note_changes(plan: _Plan, changes: Changes) -> None:
    """Note in ``changes`` the entity rows ``plan`` wrote (when not only validating)."""
    if plan.options.validation_only:
        return
    bp = plan.blueprint["identifier"]
    changes.entities.update((bp, entity.identifier) for _, entity, _ in plan.stored)
    changes.entities.update((bp, identifier) for identifier in plan.same.values())
    changes.entities.update((entity.blueprint, entity.identifier) for entity in plan.to_create)


def _within(blueprint: str, query: Query) -> Query:
    """``query`` restricted to one blueprint, with the blueprint rule at the top level so that
    the SQL prefilter narrows by it (and by the query's own top-level rules)."""
    rule = Rule("$blueprint", "=", blueprint)
    if query.combinator == "and":
        return Query("and", (rule, *query.rules))
    return Query("and", (rule, query))


def _shown_identifier(body: Any) -> str:
    """How an error names the entity of ``body``: ``"unknown"`` (which Ocean drops silently, as
    a search identifier that matched nothing) only when it has no identifier to show; a number
    is shown as such (a mapping that yields numbers must fail loudly)."""
    identifier = body.get("identifier") if isinstance(body, dict) else None
    if isinstance(identifier, str):
        return identifier
    if isinstance(identifier, int | float) and not isinstance(identifier, bool):
        return orjson.dumps(identifier).decode()
    return "unknown"


def parse_search_body(body: Any) -> Query:
    if isinstance(body, dict) and "query" in body and "rules" not in body:
        body = body["query"]
    return parse_query(body)


def _write_key(blueprint: JSONObject, options: WriteOptions) -> bytes:
    """What, besides the body, decides the row a write produces: the blueprint's schema and
    relations (validation, relation shapes), merge or replace, and the datasource stamp."""
    return orjson.dumps(
        [blueprint["schema"], blueprint["relations"], options.merge, options.datasource],
        option=orjson.OPT_SORT_KEYS,
    )


def _digests(bodies: Sequence[Any], key: bytes) -> list[str | None] | None:
    """The row digest of each body, None where it may not be trusted to repeat a write.

    A body repeats its earlier write only when it resolves to the same thing every time (see
    :func:`~shoal.content_digest.may_repeat`) and its identifier occurs once in the batch.
    Returns None (no digests at all) when some body has no string identifier: a search
    identifier may resolve to any row of the batch.
    """
    identifiers: list[str] = []
    for body in bodies:
        identifier = body.get("identifier") if isinstance(body, dict) else None
        if not isinstance(identifier, str):
            return None
        identifiers.append(identifier)
    repeated = {identifier for identifier, count in Counter(identifiers).items() if count > 1}
    row_digest = row_digester(key)
    digests: list[str | None] = []
    for body, identifier in zip(bodies, identifiers, strict=True):
        digest = body_digest(body) if identifier not in repeated and may_repeat(body) else None
        digests.append(None if digest is None else row_digest(digest))
    return digests
