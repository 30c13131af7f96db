"""Blueprint storage, plus the compiled property validators entity writes use."""

from __future__ import annotations

from typing import Any

from jsonschema.protocols import Validator
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shoal.catalog.blueprints import (
    PropertyCheck,
    compile_property_check,
    compile_validator,
    merge_blueprint,
    normalize_blueprint,
)
from shoal.catalog.entities import relation_values
from shoal.catalog.store import schema
from shoal.catalog.store.database import Database
from shoal.catalog.store.lookups import existing_keys
from shoal.catalog.store.relation_targets import RelationRow, Relations
from shoal.clock import now_us, to_iso
from shoal.errors import ConflictError, InvalidInputError, NotFoundError
from shoal.types import JSONObject

__all__ = ["BlueprintStore"]

_t = schema.blueprints
_e = schema.entities


def _to_json(row: Any) -> JSONObject:
    return {
        **row.body,
        "createdAt": to_iso(row.created_at),
        "updatedAt": to_iso(row.updated_at),
        "createdBy": row.created_by,
    }


class BlueprintStore:
    def __init__(self, database: Database, relations: Relations) -> None:
        self._db = database
        self._relations = relations
        self._validators: dict[tuple[str, int], Validator] = {}
        self._checks: dict[tuple[str, int], PropertyCheck] = {}

    async def list(self) -> list[JSONObject]:
        async with self._db.read() as conn:
            rows = await conn.execute(select(_t).order_by(_t.c.identifier))
            return [_to_json(row) for row in rows]

    async def get(self, identifier: str, conn: AsyncConnection | None = None) -> JSONObject:
        row = await self._row(identifier, conn)
        if row is None:
            message = f"blueprint {identifier!r} was not found"
            raise NotFoundError(message)
        return _to_json(row)

    async def find(self, identifier: str, conn: AsyncConnection | None = None) -> JSONObject | None:
        row = await self._row(identifier, conn)
        return None if row is None else _to_json(row)

    async def _row(self, identifier: str, conn: AsyncConnection | None) -> Any:
        query = select(_t).where(_t.c.identifier == identifier)
        if conn is not None:
            return (await conn.execute(query)).first()
        async with self._db.read() as own:
            return (await own.execute(query)).first()

    async def targets(self, conn: AsyncConnection | None = None) -> frozenset[str]:
        """The blueprints that some blueprint's relation points at. Only their entities can
        have entities pointing at them: relation rows follow the relations (see
        :meth:`_relink`), and a blueprint that is a target cannot be deleted."""
        query = select(_t.c.body)
        if conn is None:
            async with self._db.read() as own:
                bodies = (await own.execute(query)).scalars().all()
        else:
            bodies = (await conn.execute(query)).scalars().all()
        return frozenset(
            relation["target"] for body in bodies for relation in body["relations"].values()
        )

    def validator(self, blueprint: JSONObject) -> Validator:
        key = (blueprint["identifier"], hash(str(blueprint["schema"])))
        validator = self._validators.get(key)
        if validator is None:
            validator = self._validators[key] = compile_validator(blueprint)
        return validator

    def property_check(self, blueprint: JSONObject) -> PropertyCheck:
        """The fast check that spares most writes the validator (compiled once, reused)."""
        key = (blueprint["identifier"], hash(str(blueprint["schema"])))
        check = self._checks.get(key)
        if check is None:
            check = self._checks[key] = compile_property_check(blueprint)
        return check

    async def _check_targets(self, conn: AsyncConnection, body: JSONObject) -> None:
        targets = {r["target"] for r in body["relations"].values()} - {body["identifier"]}
        if not targets:
            return
        found = set(
            (
                await conn.execute(select(_t.c.identifier).where(_t.c.identifier.in_(targets)))
            ).scalars()
        )
        missing = sorted(targets - found)
        if missing:
            message = (
                f"blueprint {body['identifier']!r} has a relation to unknown blueprint "
                f"{missing[0]!r}; create that blueprint first"
            )
            raise InvalidInputError(message)

    async def create(self, body: Any, *, actor: str | None) -> JSONObject:
        blueprint = normalize_blueprint(body)
        now = now_us()
        async with self._db.write() as conn:
            if await self._row(blueprint["identifier"], conn) is not None:
                message = f"blueprint {blueprint['identifier']!r} already exists"
                raise ConflictError(message, code="identifier_taken")
            await self._check_targets(conn, blueprint)
            await conn.execute(
                _t.insert().values(
                    identifier=blueprint["identifier"],
                    body=blueprint,
                    created_by=actor,
                    created_at=now,
                    updated_at=now,
                )
            )
            return await self.get(blueprint["identifier"], conn)

    async def update(self, identifier: str, patch: Any, *, replace: bool = False) -> JSONObject:
        async with self._db.write() as conn:
            current = await self.get(identifier, conn)
            stored = {
                k: v for k, v in current.items() if k not in ("createdAt", "updatedAt", "createdBy")
            }
            if replace:
                body = normalize_blueprint(
                    {**(patch if isinstance(patch, dict) else {}), "identifier": identifier}
                )
            else:
                body = merge_blueprint(stored, patch)
            await self._check_targets(conn, body)
            await conn.execute(
                _t.update()
                .where(_t.c.identifier == identifier)
                .values(body=body, updated_at=now_us())
            )
            await self._relink(conn, identifier, current["relations"], body["relations"])
            return await self.get(identifier, conn)

    async def _relink(
        self,
        conn: AsyncConnection,
        identifier: str,
        before: dict[str, JSONObject],
        after: dict[str, JSONObject],
    ) -> None:
        """Keep the relation rows of ``identifier``'s entities true to its relations: a relation
        dropped has none (deleting its old targets must not delete or clear its holders); one
        pointed at another blueprint, or added (entities may hold values of a relation dropped
        before), has rows for the values its entities hold, and the values naming no entity of
        its target (deleted while the relation was dropped, or never of that blueprint) are
        cleared, as deleting their target would have."""
        targets: dict[str, str] = {}  # the relations to write rows for, and their target
        for name in sorted(before.keys() | after.keys()):
            target = after[name]["target"] if name in after else None
            if target == (before[name]["target"] if name in before else None):
                continue
            await self._relations.remove_relation(conn, identifier, name)
            if target is not None:
                targets[name] = target
        if not targets:
            return
        rows: list[RelationRow] = []
        held = select(_e.c.identifier, _e.c.relations).where(_e.c.blueprint == identifier)
        holders: dict[str, JSONObject] = {}
        for holder, relations in await conn.execute(held):  # one pass over the entities
            for name, target in targets.items():
                values = relation_values(relations.get(name))
                rows.extend((identifier, holder, name, target, v) for v in values)
                if values:
                    holders[holder] = relations
        wanted = {(row[3], row[4]) for row in rows}
        missing = wanted - await existing_keys(self._db, conn, wanted)
        if missing:
            cleared = (
                (holder, name, value)
                for _, holder, name, target, value in rows
                if (target, value) in missing
            )
            await self._relations.clear(conn, identifier, holders, cleared)
            rows = [row for row in rows if (row[3], row[4]) not in missing]
        await self._relations.add(conn, rows)  # once: see Relations.add

    async def delete(self, identifier: str) -> None:
        async with self._db.write() as conn:
            await self.get(identifier, conn)
            count = (
                await conn.execute(
                    select(func.count())
                    .select_from(schema.entities)
                    .where(schema.entities.c.blueprint == identifier)
                )
            ).scalar_one()
            if count:
                message = f"blueprint {identifier!r} still has {count} entities; delete them first"
                raise ConflictError(message, code="has_dependents")
            for row in await conn.execute(select(_t).where(_t.c.identifier != identifier)):
                other = _to_json(row)
                for name, relation in other["relations"].items():
                    if relation["target"] == identifier:
                        message = (
                            f"blueprint {identifier!r} is the target of relation {name!r} of "
                            f"blueprint {other['identifier']!r}; remove that relation first"
                        )
                        raise ConflictError(message, code="has_dependents")
            await conn.execute(delete(_t).where(_t.c.identifier == identifier))

    async def created_by(self, identifier: str) -> str | None:
        row = await self._row(identifier, None)
        return None if row is None else row.created_by
