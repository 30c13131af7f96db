"""Time as the catalog stores it: integer microseconds since the epoch, UTC.

On the wire every timestamp is ISO-8601 with a zone (``2026-11-26T21:05:31.033181Z``); Ocean parses
them with ``datetime.fromisoformat`` and compares them with its own ``isoformat()`` values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shoal.errors import InvalidInputError

__all__ = ["from_iso", "now_us", "parse_wire_time", "to_datetime", "to_iso", "utcnow"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def now_us() -> int:
    return to_us(utcnow())


def to_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def to_iso(us: int | None) -> str | None:
    """``2026-11-26T21:05:31.033181Z``, or None for None."""
    if us is None:
        return None
    return to_datetime(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(value: str) -> int:
    """Parse an ISO-8601 timestamp; a value without a zone is refused (it would be ambiguous)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, TypeError, AttributeError):
        message = f"not an ISO-8601 timestamp: {value!r}"
        raise InvalidInputError(message) from None
    if moment.tzinfo is None:
        message = f"timestamp {value!r} has no time zone; add 'Z' or an offset"
        raise InvalidInputError(message)
    return to_us(moment)


def parse_wire_time(value: Any) -> datetime | None:
    """A timestamp a catalog sent (Shoal's or another): ISO-8601, ``Z`` accepted, a missing zone
    taken as UTC; None when it is not one (absent, or not a timestamp)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
