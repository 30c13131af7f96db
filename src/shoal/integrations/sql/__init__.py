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
from typing import Any, Final, cast

import shoal
from shoal.errors import ConfigError
from shoal.integrations.sql.config import CONFIG_ENV, KindQuery, SqlConfig, async_url
from shoal.integrations.sql.rows import json_row, json_value
from shoal.integrations.sql.source import fetch_rows
from shoal.sync.integration import Integration, RawBatch, load_resource
from shoal.types import JSONObject

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
KIND_PLACEHOLDER: Final = "@KIND@"
_HERE: Final = Path(__file__).parent


def _replace(value: Any, kind: str) -> Any:
    if isinstance(value, str):
        return value.replace(KIND_PLACEHOLDER, kind)
    if isinstance(value, dict):
        return {key: _replace(item, kind) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, kind) for item in value]
    return value


def load_default_mapping(kinds: list[str]) -> JSONObject:
    """The default mapping config for ``kinds``: the shipped template's resource once per kind.

    Kind names are restricted (``[A-Za-z0-9][A-Za-z0-9_.-]*``) by the config, so they are safe
    inside the template's jq string literals.
    """
    template: Any = load_resource(_HERE, "port-app-config.yaml")
    if not isinstance(template, dict) or len(template.get("resources") or []) != 1:
        raise ConfigError(
            "port-app-config.yaml of the sql integration is not a one-resource template"
        )
    resource = template["resources"][0]
    return cast(JSONObject, {**template, "resources": [_replace(resource, kind) for kind in kinds]})


def load_default_blueprints() -> list[JSONObject]:
    """The default blueprints (Port blueprint JSON), freshly parsed on every call."""
    blueprints: Any = load_resource(_HERE, "blueprints.json")
    if not isinstance(blueprints, list) or not all(isinstance(b, dict) for b in blueprints):
        raise ConfigError("blueprints.json of the sql integration is not a list of objects")
    return cast(list[JSONObject], blueprints)


def create_integration(config: SqlConfig | None = None) -> Integration:
    """The sql integration with one resync handler per kind of ``config``.

    ``config`` defaults to :meth:`SqlConfig.from_env` (the file ``SHOAL_SQL_CONFIG`` names),
    read once, here. Every resync of a kind opens its own connection and closes it at the end.
    """
    resolved = SqlConfig.from_env() if config is None else config
    integration = Integration(
        INTEGRATION_TYPE,
        version=shoal.__version__,
        default_mapping=load_default_mapping(list(resolved.kinds)),
        default_blueprints=load_default_blueprints(),
    )

    async def resync(kind: str) -> AsyncIterator[RawBatch]:
        rows = fetch_rows(resolved, kind)
        async with contextlib.aclosing(rows):
            async for batch in rows:
                yield batch

    for kind in resolved.kinds:
        integration.on_resync(kind)(resync)
    return integration
