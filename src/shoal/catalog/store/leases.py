"""Integration leases: at most one process runs an integration's resyncs at a time.

A process holds the lease of an integration while it renews it before ``expires_at``; another
process asking meanwhile is told who holds it, and takes over once the lease expires (the holder
died or lost the catalog).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select

from shoal.catalog.store import schema
from shoal.catalog.store.database import Database
from shoal.clock import now_us

__all__ = ["Lease", "LeaseStore"]

_l = schema.integration_leases


@dataclass(frozen=True, slots=True)
class Lease:
    integration: str
    holder: str
    expires_at: int
    granted: bool


class LeaseStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def acquire(self, integration: str, holder: str, ttl_us: int) -> Lease:
        """Take or renew the lease; ``granted`` is False while another holder's lease is live.

        One conditional upsert decides: it takes the row only when it is free, expired or already
        ours, so two processes asking at the same instant can never both be granted.
        """
        now = now_us()
        expires = now + ttl_us
        async with self._db.control_write() as conn:
            insert = self._db.insert(_l).values(
                integration=integration, holder=holder, expires_at=expires
            )
            await conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[_l.c.integration],
                    set_={
                        "holder": insert.excluded.holder,
                        "expires_at": insert.excluded.expires_at,
                    },
                    where=(_l.c.holder == insert.excluded.holder) | (_l.c.expires_at <= now),
                )
            )
            current = (await conn.execute(select(_l).where(_l.c.integration == integration))).one()
        granted = current.holder == holder
        return Lease(integration, current.holder, current.expires_at, granted=granted)

    async def release(self, integration: str, holder: str) -> bool:
        async with self._db.control_write() as conn:
            result = await conn.execute(
                delete(_l).where(_l.c.integration == integration, _l.c.holder == holder)
            )
            return bool(result.rowcount)
