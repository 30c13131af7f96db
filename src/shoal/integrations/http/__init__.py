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
from typing import Final

from shoal.integrations._bundled import BundledPackage
from shoal.integrations.http.client import ApiClient, parse_retry_after
from shoal.integrations.http.config import CONFIG_ENV, HttpConfig, KindConfig
from shoal.integrations.http.pagination import fetch_pages
from shoal.sync.integration import Integration, RawBatch

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
_PACKAGE: Final = BundledPackage(INTEGRATION_TYPE, Path(__file__).parent)
load_default_mapping: Final = _PACKAGE.load_kind_mapping
load_default_blueprints: Final = _PACKAGE.load_blueprints


def create_integration(config: HttpConfig | None = None) -> Integration:
    """The http integration with one resync handler per kind of ``config``.

    ``config`` defaults to :meth:`HttpConfig.from_env` (the file ``SHOAL_HTTP_CONFIG`` names),
    read once, here. Every resync of a kind opens its own HTTP session and closes it at the end.
    """
    resolved = HttpConfig.from_env() if config is None else config

    async def resync(kind: str) -> AsyncIterator[RawBatch]:
        async with ApiClient(resolved) as client:
            pages = fetch_pages(client, kind, resolved.kinds[kind])
            async with contextlib.aclosing(pages):
                async for page in pages:
                    yield page

    return _PACKAGE.integration(resolved.kinds, resync, load_default_mapping(list(resolved.kinds)))
