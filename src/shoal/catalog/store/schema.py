"""Tables of the catalog store (SQLAlchemy Core; one schema for SQLite and PostgreSQL).

Timestamps are epoch microseconds (BIGINT) so that ordering and ``before`` filters are exact on
both engines; JSON documents are stored as text serialised with orjson.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Dialect,
    Index,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

__all__ = ["CONTROL_TABLES", "metadata"]


class JSONText(TypeDecorator[Any]):
    """A JSON document stored as text, serialised with orjson (fast; identical on both engines)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else orjson.dumps(value).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else orjson.loads(value)


metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("applied_at", BigInteger, nullable=False),
)

server_settings = Table(
    "server_settings",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

credentials = Table(
    "credentials",
    metadata,
    Column("client_id", String(100), primary_key=True),
    Column("secret_hash", String(300), nullable=False),
    Column("role", String(20), nullable=False),
    Column("integration", String(100)),
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
)

ended_sessions = Table(
    "ended_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
)
"""Web UI sessions signed out before their token expired (``expires_at``, epoch µs), whose
tokens the catalog refuses; a row is dropped once no token of its session can be valid."""

blueprints = Table(
    "blueprints",
    metadata,
    Column("identifier", String(100), primary_key=True),
    Column("body", JSONText, nullable=False),
    Column("created_by", String(100)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

entities = Table(
    "entities",
    metadata,
    Column("blueprint", String(100), primary_key=True),
    Column("identifier", String(1000), primary_key=True),
    Column("title", Text),
    Column("icon", Text),
    Column("team", JSONText, nullable=False),
    Column("properties", JSONText, nullable=False),
    Column("relations", JSONText, nullable=False),
    Column("datasource", String(1000)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(100)),
    Column("updated_by", String(100)),
    # Digest of the write that produced this row (blueprint version, write options and body):
    # the same write again cannot change the row, so it is recognised without reading it.
    # NULL when the row came from anything else (migration 0003_entity_content_hash).
    Column("content_hash", String(64)),
    Index("ix_entities_identifier", "identifier"),
    Index("ix_entities_datasource", "datasource", "blueprint", "identifier"),
    Index("ix_entities_updated_at", "updated_at"),
    Index("ix_entities_blueprint_title", "blueprint", "title"),
)

_RELATION_KEY = {
    "blueprint": 100,
    "identifier": 1000,
    "relation": 100,
    "target_blueprint": 100,
    "target_identifier": 1000,
}
"""The key of a relation row (column → length), which both tables below hold."""


def _relation_key(*names: str) -> list[Column[str]]:
    """The key columns of a relation row, in the order ``names``."""
    return [Column(name, String(_RELATION_KEY[name]), primary_key=True) for name in names]


entity_relations = Table(
    "entity_relations",
    metadata,
    *_relation_key("blueprint", "identifier", "relation", "target_blueprint", "target_identifier"),
    # The store version of the transaction that wrote the row: rows written after
    # ``relation_targets_merged.version`` are not in ``relation_targets`` yet.
    Column("written_in", BigInteger, nullable=False),
    Index("ix_entity_relations_written", "written_in"),
)
"""One row per target of each entity's relations, keyed by the entity that points."""

relation_targets = Table(
    "relation_targets",
    metadata,
    *_relation_key("target_blueprint", "target_identifier", "blueprint", "identifier", "relation"),
    sqlite_with_rowid=False,
)
"""``entity_relations`` keyed by target, brought up to date in large steps (see
:mod:`.relation_targets`)."""

relation_targets_merged = Table(
    "relation_targets_merged",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)
"""One row: every ``entity_relations`` row written by store version ``version`` or before is in
``relation_targets``."""

integrations = Table(
    "integrations",
    metadata,
    Column("identifier", String(100), primary_key=True),
    Column("body", JSONText, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

resync_requests = Table(
    "resync_requests",
    metadata,
    Column("id", String(60), primary_key=True),
    Column("integration", String(100), nullable=False),
    Column("source", String(20), nullable=False),
    Column("actor", String(200)),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_resync_requests_integration", "integration", "created_at"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("integration", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("body", JSONText, nullable=False),
    Index("ix_runs_integration", "integration", "started_at"),
    Index("ix_runs_status", "status", "heartbeat_at"),
)

ingest_events = Table(
    "ingest_events",
    metadata,
    Column("integration", String(100), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("kind_key", String(1000), primary_key=True),
    Column("body", JSONText, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

kind_examples = Table(
    "kind_examples",
    metadata,
    Column("integration", String(100), primary_key=True),
    Column("kind", String(1000), primary_key=True),
    Column("body", JSONText, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

integration_leases = Table(
    "integration_leases",
    metadata,
    Column("integration", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

store_version = Table(
    "store_version",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)
"""One row: the number of write transactions of content committed so far (see
:mod:`.changes`)."""

CONTROL_TABLES = (
    server_settings, credentials, ended_sessions, integrations, resync_requests, runs,
    ingest_events, kind_examples, integration_leases,
)  # fmt: skip
"""Control data: what integrations, their runs and the catalog's own access are, as opposed to
the catalog's content. Written by :meth:`~shoal.catalog.store.database.Database.control_write`
only, never together with content; a SQLite catalog keeps them in a database file of its own
(see :mod:`.database`)."""
