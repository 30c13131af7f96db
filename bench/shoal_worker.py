"""The Shoal side of the benchmark: the bundled fake integration, run as `shoal integration run`.

    python -m bench.shoal_worker CATALOG_URL CLIENT_ID CLIENT_SECRET CONTROL_FILE REQUEST_LOG

The integration is the fake one (its default mapping and blueprints, ``fetch_pages`` as its
handler) except that every kind re-reads ``persons`` and ``generation`` from the control file,
so one process serves every phase. Triggers arrive by push (server-sent events).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import shoal
from bench import _reqlog
from shoal.integrations.fake import (
    INTEGRATION_TYPE,
    KINDS,
    FakeSettings,
    fetch_pages,
    load_default_blueprints,
    load_default_mapping,
)
from shoal.sync.integration import Integration, RawBatch
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings
from shoal.tuning import tune_gc

IDENTIFIER = "fake-org"


def bench_integration(control: Path) -> Integration:
    integration = Integration(
        INTEGRATION_TYPE,
        version=shoal.__version__,
        default_mapping=load_default_mapping(),
        default_blueprints=load_default_blueprints(),
    )

    def settings() -> FakeSettings:
        return FakeSettings(**json.loads(control.read_text()))

    async def resync(kind: str) -> AsyncIterator[RawBatch]:
        async for page in fetch_pages(settings(), kind):
            yield page

    for kind in KINDS:
        integration.on_resync(kind)(resync)
    return integration


async def main(url: str, client_id: str, secret: str, control: Path) -> None:
    settings = RunnerSettings(
        catalog_url=url,
        client_id=client_id,
        client_secret=secret,
        identifier=IDENTIFIER,
        resync_on_start=False,
        listener="push",
    )
    tune_gc()  # as `shoal integration run` does
    runner = IntegrationRunner(bench_integration(control), settings)
    try:
        await runner.serve()
    finally:
        await runner.aclose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    catalog_url, client_id, client_secret, control_file, request_log = sys.argv[1:6]
    _reqlog.install(request_log)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(catalog_url, client_id, client_secret, Path(control_file)))
