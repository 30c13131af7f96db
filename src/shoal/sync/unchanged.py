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


def include_paths(entities: Iterable[JSONObject]) -> list[str]:
    """The ``include`` projection covering every field the entities set."""
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


def is_unchanged(desired: JSONObject, current: JSONObject | None) -> bool:
    """True when writing ``desired`` (merge semantics) over ``current`` would change nothing.

    Only the fields ``desired`` sets are compared; a ``None`` value equals an absent one.
    """
    if current is None:
        return False
    for key in ("title", "icon"):
        if key in desired and desired[key] != current.get(key):
            return False
    if "team" in desired and _team(desired["team"]) != _team(current.get("team")):
        return False
    return _same_mapping(desired.get("properties"), current.get("properties")) and _same_mapping(
        desired.get("relations"), current.get("relations")
    )
