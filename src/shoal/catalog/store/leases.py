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
        """Take or renew the lease; ``granted`` is False while another holder's lease is live."""
        now = now_us()
        async with self._db.write() as conn:
            if self._db.is_postgres:  # serialise concurrent acquirers of the same integration
                current = (
                    await conn.execute(
                        select(_l).where(_l.c.integration == integration).with_for_update()
                    )
                ).first()
            else:
                current = (
                    await conn.execute(select(_l).where(_l.c.integration == integration))
                ).first()
            if current is not None and current.holder != holder and current.expires_at > now:
                return Lease(integration, current.holder, current.expires_at, granted=False)
            expires = now + ttl_us
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
                )
            )
            return Lease(integration, holder, expires, granted=True)

    async def release(self, integration: str, holder: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                delete(_l).where(_l.c.integration == integration, _l.c.holder == holder)
            )
            return bool(result.rowcount)
