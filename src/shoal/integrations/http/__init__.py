"""The bundled ``http`` integration: any JSON REST API, described by one YAML file.

``SHOAL_HTTP_CONFIG`` names the file: the base URL, authentication, and per kind the endpoint,
the jq path of the items in a response and the pagination style (page number, offset, cursor,
``Link`` header). See ``docs/integrations/http.md``.

::

    integration = create_integration(HttpConfig.from_yaml(Path("api.yaml")))
    integration = create_integration()  # the file SHOAL_HTTP_CONFIG names
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final, cast

import shoal
from shoal.errors import ConfigError
from shoal.integrations.http.client import ApiClient, parse_retry_after
from shoal.integrations.http.config import CONFIG_ENV, HttpConfig, KindConfig
from shoal.integrations.http.pagination import fetch_pages
from shoal.sync.integration import Integration, RawBatch, load_resource
from shoal.types import JSONObject

__all__ = [
    "CONFIG_ENV",
    "INTEGRATION_TYPE",
    "ApiClient",
    "HttpConfig",
    "KindConfig",
    "create_integration",
    "fetch_pages",
    "load_default_blueprints",
    "load_default_mapping",
    "parse_retry_after",
]

INTEGRATION_TYPE: Final = "http"
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
            "port-app-config.yaml of the http integration is not a one-resource template"
        )
    resource = template["resources"][0]
    return cast(JSONObject, {**template, "resources": [_replace(resource, kind) for kind in kinds]})


def load_default_blueprints() -> list[JSONObject]:
    """The default blueprints (Port blueprint JSON), freshly parsed on every call."""
    blueprints: Any = load_resource(_HERE, "blueprints.json")
    if not isinstance(blueprints, list) or not all(isinstance(b, dict) for b in blueprints):
        raise ConfigError("blueprints.json of the http integration is not a list of objects")
    return cast(list[JSONObject], blueprints)


def create_integration(config: HttpConfig | None = None) -> Integration:
    """The http integration with one resync handler per kind of ``config``.

    ``config`` defaults to :meth:`HttpConfig.from_env` (the file ``SHOAL_HTTP_CONFIG`` names),
    read once, here. Every resync of a kind opens its own HTTP session and closes it at the end.
    """
    resolved = HttpConfig.from_env() if config is None else config
    integration = Integration(
        INTEGRATION_TYPE,
        version=shoal.__version__,
        default_mapping=load_default_mapping(list(resolved.kinds)),
        default_blueprints=load_default_blueprints(),
    )

    async def resync(kind: str) -> AsyncIterator[RawBatch]:
        async with ApiClient(resolved) as client:
            pages = fetch_pages(client, kind, resolved.kinds[kind])
            async with contextlib.aclosing(pages):
                async for page in pages:
                    yield page

    for kind in resolved.kinds:
        integration.on_resync(kind)(resync)
    return integration
