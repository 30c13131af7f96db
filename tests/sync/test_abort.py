"""Abort is prompt, total and truthful, wherever the run is when the trigger arrives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.integrations.fake import FakeSettings, create_integration
from shoal.sync.run_record import RunRecord, RunStatus
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings
from shoal.sync.supervisor import Supervisor, Trigger
from tests.conftest import admin_credentials


class RecordingTransport(httpx.AsyncBaseTransport):
    """Real HTTP, with a log of every request sent and an optional one-off stall."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.log: list[tuple[float, str, str, bytes]] = []
        self.stall_on: str | None = None
        self.stalled = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.log.append((asyncio.get_running_loop().time(), request.method, str(request.url), body))
        if self.stall_on is not None and self.stall_on in request.url.path:
            self.stall_on = None
            self.stalled.set()
            await asyncio.sleep(3600)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[RunningCatalog]:
    settings = CatalogSettings(
        port=0, data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'c.db'}"
    )
    async with running_catalog(settings) as running:
        yield running


@contextlib.asynccontextmanager
async def runner_for(
    catalog: RunningCatalog, fake: FakeSettings, transport: RecordingTransport
) -> AsyncIterator[tuple[IntegrationRunner, dict[str, float]]]:
    creds = admin_credentials(catalog)
    settings = RunnerSettings(
        catalog_url=catalog.url,
        client_id=creds["clientId"],
        client_secret=creds["clientSecret"],
        identifier="fake-org",
        listener="none",
        progress_interval=0.05,
    )
    runner = IntegrationRunner(create_integration(fake), settings, transport=transport)
    ended: dict[str, float] = {}

    async def run(record: RunRecord) -> RunRecord:
        try:
            return await runner._run_resync(record)
        finally:
            ended[record.id] = asyncio.get_running_loop().time()

    runner.supervisor = Supervisor(runner.identifier, run, runner._report_ended)
    task = asyncio.create_task(runner.serve())
    try:
        yield runner, ended
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.aclose()


async def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("phase", ["fetch", "load", "delete"])
async def test_abort_stops_the_run_wherever_it_is(catalog: RunningCatalog, phase: str) -> None:
    transport = RecordingTransport()
    fake = FakeSettings(persons=400, page_size=50)
    if phase == "fetch":
        fake = FakeSettings(
            persons=400, page_size=50, page_latency=3600
        )  # the first page never comes
    transport.stall_on = {
        "fetch": "/nothing",
        "load": "/entities/bulk",
        "delete": "/datasource-entities",
    }[phase]
    async with runner_for(catalog, fake, transport) as (runner, ended):
        supervisor = runner.supervisor
        if phase == "fetch":
            await wait_until(
                lambda: (
                    supervisor.current is not None
                    and any("/runs/" in u for _, _, u, _ in transport.log)
                )
            )
            await asyncio.sleep(0.2)
        else:
            await asyncio.wait_for(transport.stalled.wait(), 30)
        old = supervisor.current
        assert old is not None
        if phase == "fetch":  # let the next run fetch normally
            runner.integration = create_integration(FakeSettings(persons=400, page_size=50))
        supervisor.request(Trigger("api", "rr_test"))
        await wait_until(lambda: old.id in ended)
        abort_done = ended[old.id]
        await wait_until(lambda: len(supervisor.finished) >= 2, 60)

    first, second = supervisor.finished[:2]
    assert (
        first.id == old.id and first.status is RunStatus.ABORTED and first.aborted_by == second.id
    )
    assert first.delete_phase.status == "skipped" and first.delete_phase.deleted == 0
    assert second.status is RunStatus.COMPLETED
    late = [(m, u, b) for t, m, u, b in transport.log if t > abort_done and old.id in u]
    # the only request about the old run after it stopped is the supervisor's truthful record of it
    assert len(late) == 1, late
    method, url, body = late[0]
    assert method == "PUT" and url.endswith(f"/runs/{old.id}")
    assert orjson.loads(body)["status"] == "aborted"
    assert not any(
        "delete" in u
        for t, _, u, _ in transport.log
        if t > abort_done and "ocean_info_resync_id=" + old.id in u
    )
