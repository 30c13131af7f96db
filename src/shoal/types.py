"""Type aliases shared across Shoal."""

from __future__ import annotations

from typing import Any, TypeAlias

JSON: TypeAlias = Any
"""Any JSON value (the output of ``orjson.loads``). Used only where data is schemaless."""

JSONObject: TypeAlias = dict[str, Any]
"""A JSON object: raw source items, entity bodies, integration records."""
