"""Entities: parsing, merge semantics and validation against a blueprint (pure, no IO)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema.protocols import Validator

from shoal.catalog.blueprints import IDENTIFIER_PATTERN, PropertyCheck, check_identifier
from shoal.catalog.search import Query, is_search_query, parse_query
from shoal.clock import to_iso
from shoal.errors import InvalidInputError
from shoal.types import JSON, JSONObject

__all__ = [
    "Entity",
    "EntityInput",
    "datasource_owner",
    "merge_entity",
    "parse_entity_input",
    "project",
    "relation_targets",
    "relation_values",
    "validate_entity",
    "without_value",
]


_OCEAN_DATASOURCE = re.compile(
    r"port-ocean/(?P<type>[^/]+)/(?P<version>[^/]+)/(?P<id>[^/]+)(?:/(?P<feature>[^/]+))?"
)


def datasource_owner(datasource: str | None) -> str | None:
    """The integration identifier in an Ocean datasource (its User-Agent), else None.

    ``port-ocean/{type}/{version}/{identifier}/{feature}``: only the identifier segment names the
    owner (an integration's *type* may well equal another integration's identifier).
    """
    match = _OCEAN_DATASOURCE.fullmatch(datasource or "")
    return match["id"] if match else None


@dataclass(slots=True)
class Entity:
    """An entity as stored. Timestamps are epoch microseconds (see :mod:`shoal.clock`)."""

    blueprint: str
    identifier: str
    title: str | None = None
    icon: str | None = None
    team: list[str] = field(default_factory=list)
    properties: JSONObject = field(default_factory=dict)
    relations: JSONObject = field(default_factory=dict)
    datasource: str | None = None
    created_at: int = 0
    updated_at: int = 0
    created_by: str | None = None
    updated_by: str | None = None

    def to_json(self) -> JSONObject:
        return {
            "identifier": self.identifier,
            "title": self.title,
            "icon": self.icon,
            "blueprint": self.blueprint,
            "team": self.team,
            "properties": self.properties,
            "relations": self.relations,
            "datasource": self.datasource,
            "createdAt": to_iso(self.created_at),
            "createdBy": self.created_by,
            "updatedAt": to_iso(self.updated_at),
            "updatedBy": self.updated_by,
        }

    def same_content(self, other: Entity) -> bool:
        """True when a write of ``other`` over ``self`` would change nothing but timestamps."""
        return (
            self.title == other.title
            and self.icon == other.icon
            and self.team == other.team
            and self.properties == other.properties
            and self.relations == other.relations
            and self.datasource == other.datasource
        )

    def get_field(self, name: str, is_relation: bool) -> JSON:
        """Field access for :func:`shoal.catalog.search.matches`."""
        if is_relation:
            return self.relations.get(name)
        if not name.startswith("$"):
            return self.properties.get(name)
        return {
            "$identifier": self.identifier,
            "$blueprint": self.blueprint,
            "$datasource": self.datasource,
            "$title": self.title,
            "$team": self.team,
            "$icon": self.icon,
            "$createdAt": self.created_at,
            "$updatedAt": self.updated_at,
        }.get(name)


_UNSET: Any = object()


@dataclass(slots=True)
class EntityInput:
    """An entity as a client sends it: only the keys it sent are set.

    ``identifier`` may still be a search query, and so may ``team`` and relation values; the
    store resolves them before merging.
    """

    identifier: str | Query
    title: Any = _UNSET
    icon: Any = _UNSET
    team: Any = _UNSET
    properties: JSONObject | None = None
    relations: dict[str, Any] | None = None

    def searches(self) -> bool:
        """Whether resolving this input needs a search (its identifier, team or a relation)."""
        return (
            isinstance(self.identifier, Query)
            or isinstance(self.team, Query)
            or any(isinstance(value, Query) for value in (self.relations or {}).values())
        )

    def has(self, name: str) -> bool:
        return getattr(self, name) is not _UNSET


def parse_entity_input(body: Any, blueprint: str) -> EntityInput:
    """Validate the shape of one entity body (not yet against its blueprint).

    Runs for every entity of every bulk write: parsed JSON comes as ``dict``, ``list`` and
    ``str``, tested first by exact type (an ``isinstance`` against ``Mapping`` costs several
    times more)."""
    if type(body) is not dict and not isinstance(body, Mapping):
        message = "an entity must be a JSON object"
        raise InvalidInputError(message)
    if "blueprint" in body and body["blueprint"] != blueprint:
        message = f"entity blueprint {body['blueprint']!r} does not match the URL's {blueprint!r}"
        raise InvalidInputError(message)
    raw_identifier = body.get("identifier")
    identifier: str | Query
    if type(raw_identifier) is not str and is_search_query(raw_identifier):
        identifier = parse_query(raw_identifier, where="identifier")
    else:
        identifier = check_identifier(raw_identifier)
    entity = EntityInput(identifier)
    for key in ("title", "icon"):
        if key in body:
            value = body[key]
            if value is not None and not isinstance(value, str):
                message = f"entity {key} must be a string or null, got {type(value).__name__}"
                raise InvalidInputError(message)
            setattr(entity, key, value)
    if "team" in body:
        entity.team = _parse_team(body["team"])
    properties = body.get("properties")
    if properties is not None:
        if type(properties) is not dict and not isinstance(properties, Mapping):
            message = "entity properties must be an object"
            raise InvalidInputError(message)
        entity.properties = dict(properties)
    relations = body.get("relations")
    if relations is not None:
        if type(relations) is not dict and not isinstance(relations, Mapping):
            message = "entity relations must be an object"
            raise InvalidInputError(message)
        entity.relations = {name: _parse_relation(name, value) for name, value in relations.items()}
    return entity


def _parse_team(value: Any) -> list[str] | Query:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if is_search_query(value):
        return parse_query(value, where="team")
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    message = "entity team must be a string, a list of strings, a search query or null"
    raise InvalidInputError(message)


@functools.lru_cache(maxsize=1 << 16)
def _valid_target(value: str) -> bool:
    # Relation targets repeat a lot (teams, departments...): remember the verdicts.
    return IDENTIFIER_PATTERN.fullmatch(value) is not None


def _parse_relation(name: str, value: Any) -> Any:
    if value is None:
        return value
    if isinstance(value, str):
        if _valid_target(value):
            return value
        return check_identifier(value, f"relation {name!r} target")
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        if all(_valid_target(item) for item in value):
            return list(value)
        return [check_identifier(item, f"relation {name!r} target") for item in value]
    if is_search_query(value):
        return parse_query(value, where=f"relations.{name}")
    message = (
        f"relation {name!r} must be an identifier, a list of identifiers, a search query or null"
    )
    raise InvalidInputError(message)


def merge_entity(
    current: Entity | None,
    incoming: EntityInput,
    identifier: str,
    blueprint: JSONObject,
    *,
    merge: bool,
) -> Entity:
    """The entity that results from writing ``incoming`` (fully resolved) over ``current``.

    With ``merge`` (Ocean's default) only supplied properties and relations change; without it
    the entity is replaced. ``title``, ``icon`` and ``team`` are overwritten when supplied.
    Properties and relations that ``blueprint`` no longer defines are not kept from
    ``current``: the write drops them (else every merge into the entity would be refused).
    """
    if current is not None and merge:  # a copy of current (dataclasses.replace, spelled out)
        defined, related = blueprint["schema"]["properties"], blueprint["relations"]
        result = Entity(
            current.blueprint,
            current.identifier,
            current.title,
            current.icon,
            list(current.team),
            {k: v for k, v in current.properties.items() if k in defined},
            {k: v for k, v in current.relations.items() if k in related},
            current.datasource,
            current.created_at,
            current.updated_at,
            current.created_by,
            current.updated_by,
        )
    else:
        result = Entity(blueprint["identifier"], identifier)
    if current is not None:
        result.created_at, result.created_by = current.created_at, current.created_by
    if incoming.has("title"):
        result.title = incoming.title
    elif result.title is None:
        result.title = identifier if current is None else current.title
    if incoming.has("icon"):
        result.icon = incoming.icon
    if incoming.has("team"):
        result.team = list(incoming.team)
    if incoming.properties is not None:
        result.properties.update(incoming.properties)
    if incoming.relations is not None:
        result.relations.update(incoming.relations)
    return result


def validate_entity(
    entity: Entity,
    blueprint: JSONObject,
    validator: Validator,
    check: PropertyCheck | None = None,
) -> None:
    """Check properties against the blueprint schema and relations against its relations.

    ``check`` (:func:`~shoal.catalog.blueprints.compile_property_check`) accepts most valid
    properties without running ``validator``; whatever it does not accept, ``validator`` decides.
    """
    if check is not None and check(entity.properties):
        errors = []
    else:
        errors = sorted(validator.iter_errors(entity.properties), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        where = ".".join(str(part) for part in error.path) or "properties"
        if error.validator == "additionalProperties":
            unknown = sorted(set(entity.properties) - set(blueprint["schema"]["properties"]))
            message = (
                f"property {unknown[0]!r} is not in the schema of blueprint "
                f"{blueprint['identifier']!r}"
            )
        else:
            message = f"property {where!r} of entity {entity.identifier!r}: {_short(error)}"
        raise InvalidInputError(message)
    relations = blueprint["relations"]
    for name, value in entity.relations.items():
        spec = relations.get(name)
        if spec is None:
            message = f"relation {name!r} is not defined on blueprint {blueprint['identifier']!r}"
            raise InvalidInputError(message)
        if isinstance(value, list) and not spec["many"]:
            message = f"relation {name!r} holds one entity; got a list"
            raise InvalidInputError(message)
        if isinstance(value, str) and spec["many"]:
            entity.relations[name] = [value]


def _short(error: Any) -> str:
    if error.validator == "anyOf":  # our null-or-spec wrapper: report the inner failure
        inner = [e for e in error.context if e.validator != "type" or e.validator_value != "null"]
        if inner:
            error = inner[0]
    return str(error.message)


def relation_targets(entity: Entity, blueprint: JSONObject) -> Iterator[tuple[str, str, str]]:
    """``(relation, target blueprint, target identifier)`` for every relation value."""
    for name, value in entity.relations.items():
        target = blueprint["relations"][name]["target"]
        for identifier in relation_values(value):
            yield name, target, identifier


def relation_values(value: Any) -> Iterable[str]:
    """The identifiers a relation's stored value names: one, a list of them, or none."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return value
    return ()


def without_value(value: Any, identifier: str) -> Any:
    """A relation's stored value that no longer names ``identifier`` (a list keeps the others;
    a single value becomes null), as deleting that entity leaves it."""
    return [v for v in value if v != identifier] if isinstance(value, list) else None


def project(entity: JSONObject, include: list[str] | None) -> JSONObject:
    """Keep only the ``include`` paths (``identifier``, ``properties.color``, ...)."""
    if not include:
        return entity
    result: JSONObject = {}
    for path in include:
        head, _, tail = path.partition(".")
        if head not in entity:
            continue
        if not tail:
            result[head] = entity[head]
        elif isinstance(entity[head], Mapping) and tail in entity[head]:
            result.setdefault(head, {})[tail] = entity[head][tail]
    return result
