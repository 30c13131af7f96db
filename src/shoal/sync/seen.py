"""The entities a run wrote or confirmed, kept in 8 to 16 bytes each for its delete phase.

The delete phase must keep everything the run saw. A Python set of a million identifier strings
costs ~95 MB, which made an integration's memory grow with its source; :class:`SeenKeys` keeps
the 64-bit hash of each ``(blueprint, identifier)`` in an open-addressing table held in one
``array``: 16 MB per million at most, no object per entry.

Two keys with the same hash make an unseen entity look seen, so it is kept until a later run —
never one deletion too many. With 64-bit hashes that takes about four billion entities to become
likely. Hashes are Python's ``hash`` of the key (salted per process), which is all a run needs:
the table lives and dies with the run.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

__all__ = ["SeenKeys"]

_EMPTY = 0
_INITIAL_SLOTS = 1024  # a power of two


class SeenKeys:
    """A set of ``(blueprint, identifier)`` keys that only answers ``in`` and ``len``."""

    __slots__ = ("_count", "_mask", "_slots")

    def __init__(self) -> None:
        self._slots = array("q", [_EMPTY]) * _INITIAL_SLOTS
        self._mask = _INITIAL_SLOTS - 1
        self._count = 0

    def add(self, blueprint: str, identifiers: Iterable[str]) -> None:
        for identifier in identifiers:
            self._insert(_key_hash(blueprint, identifier))

    def __contains__(self, key: object) -> bool:
        if not (isinstance(key, tuple) and len(key) == 2):
            return False
        return self._slots[self._slot(_key_hash(*key))] != _EMPTY

    def __len__(self) -> int:
        """How many distinct keys were added (keys sharing a hash count once)."""
        return self._count

    def _slot(self, value: int) -> int:
        """Where ``value`` is, or the empty slot where it belongs (linear probing)."""
        slots, mask = self._slots, self._mask
        index = value & mask
        while (found := slots[index]) != _EMPTY and found != value:
            index = (index + 1) & mask
        return index

    def _insert(self, value: int) -> None:
        index = self._slot(value)
        if self._slots[index] != _EMPTY:
            return
        self._slots[index] = value
        self._count += 1
        if 2 * self._count > len(self._slots):  # at most half full: probes stay short
            self._grow()

    def _grow(self) -> None:
        old = self._slots
        self._slots = array("q", [_EMPTY]) * (2 * len(old))
        self._mask = len(self._slots) - 1
        for value in old:
            if value != _EMPTY:
                self._slots[self._slot(value)] = value


def _key_hash(blueprint: object, identifier: object) -> int:
    """A non-zero 64-bit hash of the key (zero marks an empty slot)."""
    return hash((blueprint, identifier)) or 1
