"""Trigger delivery: push (with reconnects), poll, webhook, the CLI, once mode and SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shoal.catalog.server import RunningCatalog, free_port, running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.catalog.store import open_store
from shoal.integrations.fake import FakeSettings, create_integration
from shoal.sync.runner import IntegrationRunner, LeaseLostError
from shoal.sync.settings import RunnerSettings
from tests.conftest import admin_client, admin_credentials


@pytest.fixture
def catalog_settings(tmp_path: Path) -> CatalogSettings:
    return CatalogSettings(
        port=free_port(),
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        run_heartbeat_timeout=2.0,
    )


@pytest.fixture
async def catalog(catalog_settings: CatalogSettings) -> AsyncIterator[RunningCatalog]:
    async with running_catalog(catalog_settings) as running:
        yield running


def settings_for(catalog: RunningCatalog, **changes: Any) -> RunnerSettings:
    creds = admin_credentials(catalog)
    base = RunnerSettings(
        catalog_url=catalog.url,
        client_id=creds["clientId"],
        client_secret=creds["clientSecret"],
        identifier="fake-org",
        progress_interval=0.1,
    )
    return replace(base, **changes)


@contextlib.asynccontextmanager
async def serving(runner: IntegrationRunner) -> AsyncIterator[IntegrationRunner]:
    task = asyncio.create_task(runner.serve())
    try:
        yield runner
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.aclose()


async def wait_for_run(runner: IntegrationRunner, trigger: str, timeout: float = 20.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            for record in [*runner.supervisor.finished, runner.supervisor.current]:
                if record is not None and record.trigger == trigger:
                    return record
            await asyncio.sleep(0.02)


async def test_push_delivers_a_patch_at_once(catalog: RunningCatalog) -> None:
    runner = IntegrationRunner(create_integration(FakeSettings(persons=20)), settings_for(catalog))
    async with serving(runner), await admin_client(catalog) as admin:
        await wait_for_run(runner, "start")
        await runner.supervisor.wait_idle()
        await asyncio.sleep(0.3)  # the event stream is connected by now
        response = await admin.patch("/v1/integration/fake-org", json={})
        assert response.status_code == 200
        record = await wait_for_run(runner, "api", timeout=5)
        assert record.trigger_request is not None and record.trigger_request.startswith("rr_")


async def test_push_reconnects_and_loses_no_trigger(catalog_settings: CatalogSettings) -> None:
    async with running_catalog(catalog_settings) as catalog:
        settings = settings_for(catalog)
        runner = IntegrationRunner(create_integration(FakeSettings(persons=20)), settings)
        task = asyncio.create_task(runner.serve())
        await wait_for_run(runner, "start")
        await runner.supervisor.wait_idle()
        await asyncio.sleep(0.3)
    try:
        # the catalog is down; a trigger is recorded meanwhile (e.g. by another replica)
        store = await open_store(catalog_settings.resolved_database_url, base_url=catalog.url)
        try:
            request = await store.integrations.request_resync(
                "fake-org", source="ui", actor="someone"
            )
        finally:
            await store.close()
        async with running_catalog(catalog_settings):
            try:
                record = await wait_for_run(runner, "ui", timeout=30)
                assert record.trigger_request == request.id
                await runner.supervisor.wait_idle()
            finally:  # stop the integration while the catalog still runs
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.aclose()


async def test_poll_picks_up_a_patch_within_an_interval(catalog: RunningCatalog) -> None:
    settings = settings_for(catalog, listener="poll", poll_interval=0.2)
    runner = IntegrationRunner(create_integration(FakeSettings(persons=20)), settings)
    async with serving(runner), await admin_client(catalog) as admin:
        await wait_for_run(runner, "start")
        await runner.supervisor.wait_idle()
        await admin.patch("/v1/integration/fake-org", json={})
        await wait_for_run(runner, "api", timeout=5)
        await runner.supervisor.wait_idle()
        await asyncio.sleep(0.6)  # the served request is not replayed
        assert [r.trigger for r in runner.supervisor.finished] == ["start", "api"]


async def test_webhook_is_called_by_the_catalog_on_patch(catalog: RunningCatalog) -> None:
    port = free_port()
    settings = settings_for(catalog, listener="webhook", webhook_port=port)
    runner = IntegrationRunner(create_integration(FakeSettings(persons=20)), settings)
    async with serving(runner), await admin_client(catalog) as admin:
        await wait_for_run(runner, "start")
        record = (await admin.get("/v1/integration/fake-org")).json()["integration"]
        assert record["changelogDestination"] == {
            "type": "WEBHOOK",
            "url": f"http://127.0.0.1:{port}/resync",
        }
        await runner.supervisor.wait_idle()
        await admin.patch("/v1/integration/fake-org", json={})
        await wait_for_run(runner, "webhook", timeout=10)


def cli_env(catalog: RunningCatalog, **extra: str) -> dict[str, str]:
    creds = admin_credentials(catalog)
    return {
        **os.environ,
        "SHOAL_CATALOG_URL": catalog.url,
        "SHOAL_CLIENT_ID": creds["clientId"],
        "SHOAL_CLIENT_SECRET": creds["clientSecret"],
        "SHOAL_INTEGRATION_IDENTIFIER": "fake-org",
        **extra,
    }


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shoal.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_once_mode_exit_code_follows_the_resync(catalog: RunningCatalog) -> None:
    code, out, _ = await run_cli(
        "integration", "run", "fake", "--once", env=cli_env(catalog, SHOAL_FAKE_PERSONS="30")
    )
    assert code == 0 and "completed" in out
    failing = cli_env(catalog, SHOAL_FAKE_PERSONS="30", SHOAL_FAKE_FAIL_KIND="fake-team")
    code, out, _ = await run_cli("integration", "run", "fake", "--once", env=failing)
    assert code == 1 and "failed" in out


async def test_shoal_resync_records_a_cli_request(catalog: RunningCatalog) -> None:
    env = cli_env(catalog, SHOAL_FAKE_PERSONS="10")
    await run_cli("integration", "run", "fake", "--once", env=env)
    code, out, _ = await run_cli("resync", "fake-org", env=env)
    assert code == 0 and "rr_" in out
    async with await admin_client(catalog) as admin:
        request = (await admin.get("/v1/integration/fake-org/resync-request")).json()["request"]
    assert request["source"] == "cli"
    code, _, err = await run_cli("resync", "no-such-integration", env=env)
    assert code == 1 and err.startswith("shoal: 404") and len(err.strip().splitlines()) == 1


async def test_sigterm_mid_run_reports_aborted_once(catalog: RunningCatalog) -> None:
    env = cli_env(
        catalog,
        SHOAL_FAKE_PERSONS="100000",
        SHOAL_FAKE_PAGE_SIZE="100",
        SHOAL_FAKE_PAGE_LATENCY="0.1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shoal.cli",
        "integration",
        "run",
        "fake",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with await admin_client(catalog) as admin:
        async with asyncio.timeout(30):
            while not (
                runs := (await admin.get("/v1/integration/fake-org/runs")).json().get("runs")
            ):
                await asyncio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        run = (await admin.get(f"/v1/integration/fake-org/runs/{runs[0]['id']}")).json()["run"]
        state = (await admin.get("/v1/integration/fake-org")).json()["integration"]["resyncState"]
    assert run["status"] == "aborted" and run["deletePhase"]["status"] == "skipped"
    assert state["status"] == "aborted"


async def test_a_run_longer_than_the_interval_is_reported(catalog: RunningCatalog) -> None:
    settings = settings_for(catalog, interval_minutes=0.1 / 60)
    runner = IntegrationRunner(
        create_integration(FakeSettings(persons=300, page_size=50, page_latency=0.05)), settings
    )
    async with serving(runner):
        async with asyncio.timeout(30):
            while not runner.supervisor.finished:
                await asyncio.sleep(0.05)
    record = runner.supervisor.finished[0]
    assert any("longer than the scheduled interval" in w for w in record.warnings)


async def test_a_lease_lapses_a_lifetime_after_it_was_asked_for_however_long_setup_took(
    catalog: RunningCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = IntegrationRunner(
        create_integration(FakeSettings(persons=1)), settings_for(catalog, lease_ttl=1.0)
    )
    try:
        loop = asyncio.get_running_loop()
        asked = loop.time()
        expires = await runner._acquire_lease()

        async def unanswered(*_: Any) -> None:
            await asyncio.Event().wait()  # the catalog stops answering

        monkeypatch.setattr(runner.client, "acquire_lease", unanswered)
        await asyncio.sleep(0.6)  # setting up took most of the lifetime
        with pytest.raises(LeaseLostError, match="expired before the catalog confirmed it"):
            await runner._keep_lease(expires)
        # lost before the granted lifetime ends (the run then stops writing in time), not a
        # lifetime after the keeper started (1.6)
        assert loop.time() - asked < 1.0
    finally:
        await runner.aclose()


async def test_only_the_lease_holder_runs_and_a_standby_takes_over(catalog: RunningCatalog) -> None:
    # The lifetime leaves a renewal a second of lateness on a loaded machine before it is lost.
    settings = settings_for(catalog, lease_ttl=1.5)
    active = IntegrationRunner(create_integration(FakeSettings(persons=20)), settings)
    standby = IntegrationRunner(create_integration(FakeSettings(persons=20)), settings)
    active_task = asyncio.create_task(active.serve())
    try:
        await wait_for_run(active, "start")
        standby_task = asyncio.create_task(standby.serve())
        try:
            await asyncio.sleep(2.0)  # past the lifetime: the active process renewed the lease
            assert standby.supervisor.last_started is None  # it stood by
            async with await admin_client(catalog) as admin:
                await admin.patch("/v1/integration/fake-org", json={})
                await wait_for_run(active, "api")
                assert standby.supervisor.last_started is None
                active_task.cancel()  # the active process stops and gives the lease up
                with contextlib.suppress(asyncio.CancelledError):
                    await active_task
                await wait_for_run(standby, "start", timeout=10)
        finally:
            standby_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await standby_task
    finally:
        active_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await active_task
        await active.aclose()
        await standby.aclose()


async def test_a_request_pending_before_the_stream_connects_is_served(
    catalog: RunningCatalog,
) -> None:
    first = IntegrationRunner(create_integration(FakeSettings(persons=20)), settings_for(catalog))
    try:
        await first.once()
    finally:
        await first.aclose()
    async with await admin_client(catalog) as admin:
        await admin.patch("/v1/integration/fake-org", json={})  # nobody is listening yet
    runner = IntegrationRunner(
        create_integration(FakeSettings(persons=20)), settings_for(catalog, resync_on_start=False)
    )
    async with serving(runner):
        record = await wait_for_run(runner, "api", timeout=10)
        await runner.supervisor.wait_idle()
        assert record.trigger_request is not None
        assert [r.trigger for r in runner.supervisor.finished] == ["api"]
