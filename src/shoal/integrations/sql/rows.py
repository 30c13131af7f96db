"""Database values as JSON values (pure functions): what a row becomes as a raw item.

=====================================  ==============================================
column value                           item value
=====================================  ==============================================
``None``, ``bool``, ``int``, ``str``   itself
``float``                              itself; NaN and infinities become ``null``
``Decimal``                            ``int`` when integral, else ``float``
``datetime``, ``date``, ``time``       ISO 8601 text (a naive datetime stays naive)
``timedelta``                          seconds (``float``)
``UUID``                               its text
``bytes``, ``bytearray``, ``memoryview``  base64 text
``dict``, ``list``, ``tuple``          converted element by element (JSON columns, arrays)
anything else                          ``str(value)`` (network addresses, ranges, enums)
=====================================  ==============================================
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from shoal.types import JSON, JSONObject

__all__ = ["json_row", "json_value"]


def json_value(value: Any) -> JSON:
    """``value`` as a JSON value, as the table in the module docs says."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return str(value)


def json_row(row: Mapping[Any, Any]) -> JSONObject:
    """One result row (column name -> value) as a raw item."""
    return {str(column): json_value(value) for column, value in row.items()}
