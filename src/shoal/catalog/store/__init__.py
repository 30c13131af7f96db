"""The catalog store: the only place with SQL (SQLAlchemy Core; SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass

from shoal.catalog.store.blueprints import BlueprintStore
from shoal.catalog.store.credentials import CredentialStore
from shoal.catalog.store.database import Database, open_database
from shoal.catalog.store.entities import BulkResult, EntityStore, WriteOptions
from shoal.catalog.store.integrations import IntegrationStore
from shoal.catalog.store.leases import Lease, LeaseStore
from shoal.catalog.store.relation_targets import Relations

__all__ = [
    "BlueprintStore",
    "BulkResult",
    "CredentialStore",
    "Database",
    "EntityStore",
    "IntegrationStore",
    "Lease",
    "LeaseStore",
    "Relations",
    "Store",
    "WriteOptions",
    "open_store",
]


@dataclass(frozen=True, slots=True)
class Store:
    database: Database
    blueprints: BlueprintStore
    entities: EntityStore
    integrations: IntegrationStore
    credentials: CredentialStore
    leases: LeaseStore
    relations: Relations

    async def close(self) -> None:
        await self.database.close()


async def open_store(url: str, *, base_url: str) -> Store:
    database = await open_database(url)
    relations = Relations(database)
    blueprints = BlueprintStore(database, relations)
    return Store(
        database=database,
        blueprints=blueprints,
        entities=EntityStore(database, blueprints, relations),
        integrations=IntegrationStore(database, base_url),
        credentials=CredentialStore(database),
        leases=LeaseStore(database),
        relations=relations,
    )
