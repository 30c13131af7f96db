"""What recent write transactions changed, so that a planned write can skip re-reading.

A bulk upsert is planned from what the store holds before it queues for the write lock (see
:meth:`~shoal.catalog.store.entities.EntityStore.upsert`) and, under the lock, applied only if
what it read still holds. Re-reading that (a thousand rows and their relation targets) is the
bulk of the locked section that is not the write itself. Usually there is nothing to re-read:
the transactions committed meanwhile wrote other entities (the batch ahead of it).

So every write transaction of content gets the next *store version*, a counter kept in the
database (the ``store_version`` row, incremented by the transaction itself, so it counts the
writes of every process sharing the database; writes of control data, which no plan reads,
get none), and this process remembers, for its own recent transactions,
which entity rows each one changed. A plan notes the version it read at: if every version
committed since is one of ours and none changed a row the plan read, the plan holds as it is.
Otherwise (a transaction of another process, one that declared no :class:`Changes`, one
forgotten already, or one that wrote a row the plan read) it is checked by reading again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Set

__all__ = ["ChangeLog", "Changes", "EntityKey"]

EntityKey = tuple[str, str]
"""``(blueprint, identifier)``."""


class Changes:
    """What a write transaction changes that a planned entity write may have read: the entity
    rows in :attr:`entities`, and nothing else (no blueprint, no other entity).

    Passed to :meth:`~shoal.catalog.store.database.Database.write` and filled in during the
    transaction; a transaction without one may have changed anything.
    """

    __slots__ = ("entities",)

    def __init__(self) -> None:
        self.entities: set[EntityKey] = set()


class ChangeLog:
    """The changes of this process's last ``size`` committed write transactions, by version."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._entries: OrderedDict[int, frozenset[EntityKey] | None] = OrderedDict()

    def record(self, version: int, changes: Changes | None) -> None:
        """Note the committed transaction ``version`` and what it changed (None: anything)."""
        self._entries[version] = None if changes is None else frozenset(changes.entities)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def untouched(self, since: int, until: int, read: Set[EntityKey]) -> bool:
        """Whether the transactions that committed versions ``since`` + 1 to ``until`` - 1 are
        all known here and changed no entity row in ``read``."""
        for version in range(since + 1, until):
            changed = self._entries.get(version, None)
            if changed is None or not changed.isdisjoint(read):
                return False
        return True
