"""Skip-unchanged for catalogs that rewrite every upsert (Port): compare before writing.

Shoal's catalog compares each upserted entity with what it holds and skips the write itself.
Port does not, so against Port the integration reads the current entities first (one search per
chunk) and sends only those that differ, as Ocean does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shoal.types import JSONObject

__all__ = ["include_paths", "is_unchanged", "search_query"]

SEARCH_CHUNK = 50
"""Identifiers per search request (Ocean uses the same size)."""


def include_paths(entities: Iterable[JSONObject], *, merge: bool = True) -> list[str]:
    """The ``include`` projection covering every field the entities set; none (the whole
    entity) without ``merge``, where what the entities leave out is compared too."""
    if not merge:
        return []
    paths = {"identifier", "blueprint"}
    for entity in entities:
        for key in ("title", "icon", "team"):
            if key in entity:
                paths.add(key)
        paths.update(f"properties.{name}" for name in entity.get("properties") or {})
        paths.update(f"relations.{name}" for name in entity.get("relations") or {})
    return sorted(paths)


def search_query(blueprint: str, identifiers: list[str], datasource: str) -> JSONObject:
    return {
        "combinator": "and",
        "rules": [
            {"property": "$identifier", "operator": "in", "value": identifiers},
            {"property": "$blueprint", "operator": "=", "value": blueprint},
            {"property": "$datasource", "operator": "=", "value": datasource},
        ],
    }


def _team(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return sorted(value) if isinstance(value, list) else value


def _same_mapping(desired: Any, current: Any) -> bool:
    desired = desired or {}
    current = current or {}
    return all(current.get(key) == value for key, value in desired.items())


def _set_values(mapping: Any, unset: tuple[Any, ...]) -> dict[str, Any]:
    return {key: value for key, value in (mapping or {}).items() if value not in unset}


def is_unchanged(desired: JSONObject, current: JSONObject | None, *, merge: bool = True) -> bool:
    """True when writing ``desired`` over ``current`` would change nothing.

    With ``merge`` (the write keeps what it does not set), only the fields ``desired`` sets are
    compared; without, the write replaces the entity, so a field ``current`` has and ``desired``
    leaves out is a change too. A ``None`` value equals an absent one (and for relations, so
    does an empty list).
    """
    if current is None:
        return False
    for key in ("title", "icon"):
        if (key in desired or not merge) and desired.get(key) != current.get(key):
            return False
    if ("team" in desired or not merge) and _team(desired.get("team")) != _team(
        current.get("team")
    ):
        return False
    properties, relations = desired.get("properties"), desired.get("relations")
    if merge:
        return _same_mapping(properties, current.get("properties")) and _same_mapping(
            relations, current.get("relations")
        )
    return _set_values(properties, (None,)) == _set_values(
        current.get("properties"), (None,)
    ) and _set_values(relations, (None, [])) == _set_values(current.get("relations"), (None, []))
