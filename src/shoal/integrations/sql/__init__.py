"""The bundled ``sql`` integration: the rows of SQL queries, as items of kinds.

``SHOAL_SQL_CONFIG`` names a YAML file with a SQLAlchemy database URL (SQLite, PostgreSQL,
or any database with an asyncio driver) and, per kind, a query and an optional batch size.
Rows are streamed with a server-side cursor. See ``docs/integrations/sql.md``.

::

    integration = create_integration(SqlConfig.from_yaml(Path("inventory.yaml")))
    integration = create_integration()  # the file SHOAL_SQL_CONFIG names
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from shoal.integrations._bundled import BundledPackage
from shoal.integrations.sql.config import CONFIG_ENV, KindQuery, SqlConfig, async_url
from shoal.integrations.sql.rows import json_row, json_value
from shoal.integrations.sql.source import fetch_rows
from shoal.sync.integration import Integration, RawBatch

__all__ = [
    "CONFIG_ENV",
    "INTEGRATION_TYPE",
    "KindQuery",
    "SqlConfig",
    "async_url",
    "create_integration",
    "fetch_rows",
    "json_row",
    "json_value",
    "load_default_blueprints",
    "load_default_mapping",
]

INTEGRATION_TYPE: Final = "sql"
_PACKAGE: Final = BundledPackage(INTEGRATION_TYPE, Path(__file__).parent)
load_default_mapping: Final = _PACKAGE.load_kind_mapping
load_default_blueprints: Final = _PACKAGE.load_blueprints


def create_integration(config: SqlConfig | None = None) -> Integration:
    """The sql integration with one resync handler per kind of ``config``.

    ``config`` defaults to :meth:`SqlConfig.from_env` (the file ``SHOAL_SQL_CONFIG`` names),
    read once, here. Every resync of a kind opens its own connection and closes it at the end.
    """
    resolved = SqlConfig.from_env() if config is None else config

    async def resync(kind: str) -> AsyncIterator[RawBatch]:
        rows = fetch_rows(resolved, kind)
        async with contextlib.aclosing(rows):
            async for batch in rows:
                yield batch

    return _PACKAGE.integration(resolved.kinds, resync, load_default_mapping(list(resolved.kinds)))
