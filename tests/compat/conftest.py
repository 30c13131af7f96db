"""Fixtures of the Ocean compatibility suite: a SQLite catalog and an Ocean process launcher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings
from tests.compat.harness import OceanLauncher

STALE_RUN_SECONDS = 3.0
"""The catalog's stale-run timeout here; Ocean heartbeats every second in these tests."""


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[RunningCatalog]:
    settings = CatalogSettings(
        port=0,
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        run_heartbeat_timeout=STALE_RUN_SECONDS,
    )
    async with running_catalog(settings) as running:
        yield running


@pytest.fixture
async def launcher(catalog: RunningCatalog, tmp_path: Path) -> AsyncIterator[OceanLauncher]:
    launcher = OceanLauncher(catalog, tmp_path)
    try:
        yield launcher
    finally:
        await launcher.stop_all()
