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

from collections.abc import AsyncIterator
from pathlib import Path

from shoal.integrations._bundled import BundledPackage
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
_PACKAGE = BundledPackage(INTEGRATION_TYPE, Path(__file__).parent)
load_default_mapping = _PACKAGE.load_mapping
load_default_blueprints = _PACKAGE.load_blueprints


def create_integration(settings: FakeSettings | None = None) -> Integration:
    """The fake integration with one resync handler per kind.

    ``settings`` defaults to :meth:`FakeSettings.from_env` (the ``SHOAL_FAKE_*`` variables),
    read once, here.
    """
    resolved = FakeSettings.from_env() if settings is None else settings

    async def resync(kind: str) -> AsyncIterator[RawBatch]:
        async for page in fetch_pages(resolved, kind):
            yield page

    return _PACKAGE.integration(KINDS, resync, load_default_mapping())
