"""The bundled ``fake`` integration: a deterministic synthetic organisation.

It serves five kinds -- ``fake-department``, ``fake-office``, ``fake-team``, ``fake-project``
and ``fake-person`` -- generated on demand from :class:`FakeSettings` (size, page size, item
size, latency, generation, seed, injected failures), so resyncs of any size and any failure
mode can be driven without a third-party system. See ``docs/integrations/fake.md``.

::

    integration = create_integration(FakeSettings(persons=100_000, generation=1))

The pure generator (:func:`generate_persons`, :func:`generate_items`, :func:`iter_pages`) lets
tests and benchmarks compute what the integration serves without running it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any, cast

import yaml

import shoal
from shoal.errors import ConfigError
from shoal.integrations.fake.generator import (
    OrgShape,
    generate_items,
    generate_persons,
    iter_pages,
    org_shape,
    person_at,
    person_changed,
    person_hash,
    person_present,
    person_revision,
)
from shoal.integrations.fake.kinds import (
    DEPARTMENT_KIND,
    KINDS,
    OFFICE_KIND,
    PERSON_KIND,
    PROJECT_KIND,
    TEAM_KIND,
)
from shoal.integrations.fake.settings import FakeSettings
from shoal.integrations.fake.source import fetch_pages
from shoal.sync.integration import Integration, RawBatch
from shoal.types import JSONObject

__all__ = [
    "DEPARTMENT_KIND",
    "INTEGRATION_TYPE",
    "KINDS",
    "OFFICE_KIND",
    "PERSON_KIND",
    "PROJECT_KIND",
    "TEAM_KIND",
    "FakeSettings",
    "OrgShape",
    "create_integration",
    "fetch_pages",
    "generate_items",
    "generate_persons",
    "iter_pages",
    "load_default_blueprints",
    "load_default_mapping",
    "org_shape",
    "person_at",
    "person_changed",
    "person_hash",
    "person_present",
    "person_revision",
]

INTEGRATION_TYPE = "fake"
_MAPPING_FILE = "port-app-config.yaml"
_BLUEPRINTS_FILE = "blueprints.json"


def _resource_text(name: str) -> str:
    return files(__name__).joinpath(name).read_text(encoding="utf-8")


def load_default_mapping() -> JSONObject:
    """The default mapping config (port-app-config), freshly parsed on every call."""
    mapping: Any = yaml.safe_load(_resource_text(_MAPPING_FILE))
    if not isinstance(mapping, dict):
        raise ConfigError(f"{_MAPPING_FILE} of the fake integration is not a mapping")
    return cast(JSONObject, mapping)


def load_default_blueprints() -> list[JSONObject]:
    """The default blueprints (Port blueprint JSON), freshly parsed on every call."""
    blueprints: Any = json.loads(_resource_text(_BLUEPRINTS_FILE))
    if not isinstance(blueprints, list) or not all(isinstance(b, dict) for b in blueprints):
        raise ConfigError(f"{_BLUEPRINTS_FILE} of the fake integration is not a list of objects")
    return cast(list[JSONObject], blueprints)


def create_integration(settings: FakeSettings | None = None) -> Integration:
    """The fake integration with one resync handler per kind.

    ``settings`` defaults to :meth:`FakeSettings.from_env` (the ``SHOAL_FAKE_*`` variables),
    read once, here.
    """
    resolved = FakeSettings.from_env() if settings is None else settings
    integration = Integration(
        INTEGRATION_TYPE,
        version=shoal.__version__,
        default_mapping=load_default_mapping(),
        default_blueprints=load_default_blueprints(),
    )

    async def resync(kind: str) -> AsyncIterator[RawBatch]:
        async for page in fetch_pages(resolved, kind):
            yield page

    for kind in KINDS:
        integration.on_resync(kind)(resync)
    return integration
