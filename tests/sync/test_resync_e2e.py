"""End to end: the real catalog (SQLite) + the fake integration over loopback HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.integrations.fake import (
    INTEGRATION_TYPE,
    KINDS,
    FakeSettings,
    create_integration,
    fetch_pages,
    load_default_blueprints,
    load_default_mapping,
    person_present,
)
from shoal.sync.integration import Integration, RawBatch
from shoal.sync.run_record import RunStatus
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings
from tests.conftest import admin_credentials, token_for

PERSONS = 200


@pytest.fixture
async def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningCatalog]:
    overrides = getattr(request, "param", {})  # settings given by indirect parametrization
    settings = CatalogSettings(
        port=0,
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        run_heartbeat_timeout=1.0,
        **overrides,
    )
    async with running_catalog(settings) as running:
        yield running


@pytest.fixture
def runner_settings(catalog: RunningCatalog) -> RunnerSettings:
    creds = admin_credentials(catalog)
    return RunnerSettings(
        catalog_url=catalog.url,
        client_id=creds["clientId"],
        client_secret=creds["clientSecret"],
        identifier="fake-org",
        progress_interval=0.1,
    )


@pytest.fixture
async def admin(catalog: RunningCatalog) -> AsyncIterator[httpx.AsyncClient]:
    creds = admin_credentials(catalog)
    token = await token_for(catalog.url, creds["clientId"], creds["clientSecret"])
    async with httpx.AsyncClient(
        base_url=catalog.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


async def run_once(settings: RunnerSettings, fake: FakeSettings) -> Any:
    return await run_integration_once(create_integration(fake), settings)


async def run_integration_once(integration: Integration, settings: RunnerSettings) -> Any:
    runner = IntegrationRunner(integration, settings)
    try:
        return await runner.once()
    finally:
        await runner.aclose()


async def entities_of(admin: httpx.AsyncClient, blueprint: str, *include: str) -> list[Any]:
    response = await admin.post(
        "/v1/entities/search",
        json={"combinator": "and", "rules": [{"property": "$blueprint", "operator": "=",
                                              "value": blueprint}]},
        params={"include": list(include)},
    )  # fmt: skip
    entities: list[Any] = response.json()["entities"]
    return entities


async def owned(admin: httpx.AsyncClient, blueprint: str) -> set[str]:
    response = await admin.post(
        "/v1/entities/search",
        json={
            "combinator": "and",
            "rules": [
                {"property": "$blueprint", "operator": "=", "value": blueprint},
                {"property": "$datasource", "operator": "contains", "value": "/fake-org/exporter"},
            ],
        },
        params={"include": "identifier"},
    )
    return {e["identifier"] for e in response.json()["entities"]}


def kind(record: Any, name: str) -> Any:
    return next(k for k in record.kinds if k.kind == name)


async def test_first_resync_creates_then_generation_updates_and_deletes(
    runner_settings: RunnerSettings, admin: httpx.AsyncClient
) -> None:
    first = await run_once(runner_settings, FakeSettings(persons=PERSONS, page_size=50))
    assert first.status is RunStatus.COMPLETED, first.to_json()
    persons = kind(first, "fake-person")
    assert persons.fetched == persons.mapped == persons.upserted == PERSONS
    assert len(await owned(admin, "fakePerson")) == PERSONS

    again = await run_once(runner_settings, FakeSettings(persons=PERSONS, page_size=50))
    assert kind(again, "fake-person").unchanged == PERSONS
    assert kind(again, "fake-person").upserted == 0

    fake = FakeSettings(persons=PERSONS, page_size=50, generation=1)
    second = await run_once(runner_settings, fake)
    assert second.status is RunStatus.COMPLETED, second.to_json()
    expected = {i for i in range(PERSONS) if person_present(fake.seed, i, fake.generation)}
    remaining = await owned(admin, "fakePerson")
    assert len(remaining) == len(expected) < PERSONS
    assert second.delete_phase.status == "done"
    assert second.delete_phase.deleted == PERSONS - len(expected)
    assert 0 < kind(second, "fake-person").upserted < PERSONS  # only the changed persons

    runs = (await admin.get("/v1/integration/fake-org/runs")).json()["runs"]
    assert [r["status"] for r in runs[:3]] == ["completed", "completed", "completed"]
    state = (await admin.get("/v1/integration/fake-org")).json()["integration"]["resyncState"]
    assert state["status"] == "completed"


async def test_failing_kind_skips_deletes_and_later_kinds_continue(
    runner_settings: RunnerSettings, admin: httpx.AsyncClient
) -> None:
    await run_once(runner_settings, FakeSettings(persons=PERSONS, page_size=50))
    failing = FakeSettings(
        persons=PERSONS, page_size=50, generation=1, fail_kind="fake-team", fail_after_pages=0
    )
    record = await run_once(runner_settings, failing)
    assert record.status is RunStatus.FAILED
    assert kind(record, "fake-team").status.value == "failed"
    assert kind(record, "fake-person").status.value == "completed"  # a later kind still ran
    assert record.delete_phase.status == "skipped" and "fake-team" in record.delete_phase.reason
    assert len(await owned(admin, "fakePerson")) == PERSONS  # nothing deleted


async def test_a_source_error_stops_its_kind_after_the_pages_fetched_before_it_load(
    runner_settings: RunnerSettings, admin: httpx.AsyncClient
) -> None:
    # the person handler raises after two pages: both are still loading when it does
    failing = FakeSettings(
        persons=PERSONS, page_size=50, fail_kind="fake-person", fail_after_pages=2
    )
    record = await run_once(runner_settings, failing)
    persons = kind(record, "fake-person")
    assert persons.status.value == "failed"
    assert persons.fetched == persons.mapped == persons.upserted == 100
    assert len(await owned(admin, "fakePerson")) == 100
    assert record.delete_phase.status == "skipped"


async def test_null_identifier_is_a_mapping_error_never_a_delete(
    runner_settings: RunnerSettings, admin: httpx.AsyncClient
) -> None:
    await run_once(runner_settings, FakeSettings(persons=PERSONS, page_size=50))
    record = await run_once(
        runner_settings,
        FakeSettings(persons=PERSONS, page_size=50, generation=1, null_identifier_every=7),
    )
    assert record.status is RunStatus.FAILED
    persons = kind(record, "fake-person")
    assert persons.status.value == "failed" and persons.failed > 0
    assert any("identifier" in e.message for e in persons.errors.values())
    assert record.delete_phase.status == "skipped"
    assert len(await owned(admin, "fakePerson")) == PERSONS


async def test_deletion_threshold_blocks_a_mass_delete(
    runner_settings: RunnerSettings, admin: httpx.AsyncClient
) -> None:
    await run_once(runner_settings, FakeSettings(persons=PERSONS, page_size=50))
    config = (await admin.get("/v1/integration/fake-org")).json()["integration"]["config"]
    config["entityDeletionThreshold"] = 0.5  # the mapping config is read again by every run
    await admin.patch(
        "/v1/integration/fake-org/config",
        json={"config": config},
        headers={"x-skip-resync": "true"},
    )
    record = await run_once(runner_settings, FakeSettings(persons=2, page_size=50))
    assert record.delete_phase.stale / record.delete_phase.owned > 0.5
    assert record.delete_phase.status == "blocked"
    assert "entityDeletionThreshold" in record.delete_phase.reason
    assert len(await owned(admin, "fakePerson")) == PERSONS


async def test_the_next_kind_is_fetched_while_the_last_page_of_a_kind_loads(
    runner_settings: RunnerSettings, admin: httpx.AsyncClient
) -> None:
    fake = FakeSettings(persons=PERSONS, page_size=50)
    events: list[tuple[str, str, float]] = []
    integration = Integration(
        INTEGRATION_TYPE,
        default_mapping=load_default_mapping(),
        default_blueprints=load_default_blueprints(),
    )

    async def recorded(kind: str) -> AsyncIterator[RawBatch]:
        events.append(("start", kind, time.time()))
        async for page in fetch_pages(fake, kind):
            yield page
        events.append(("end", kind, time.time()))

    for name in KINDS:
        integration.on_resync(name)(recorded)
    record = await run_integration_once(integration, runner_settings)
    assert record.status is RunStatus.COMPLETED, record.to_json()

    # handlers still run one after another, in config order
    assert [(event, kind) for event, kind, _ in events] == [
        (event, kind) for kind in KINDS for event in ("start", "end")
    ]
    # ... but the persons' handler started before the projects (the kind before) were written
    projects = await entities_of(admin, "fakeProject", "identifier", "createdAt")
    written = max(datetime.fromisoformat(e["createdAt"]).timestamp() for e in projects)
    started = next(
        moment for event, kind, moment in events if (event, kind) == ("start", KINDS[-1])
    )
    assert started < written


class HoldingTransport(httpx.AsyncBaseTransport):
    """Real HTTP, except that requests to paths ending in ``held`` wait (up to 5 s) until one
    to a path ending in ``awaited`` has been sent."""

    def __init__(self, held: str, awaited: str) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._held, self._awaited = held, awaited
        self._sent = asyncio.Event()
        self.came_while_held: list[bool] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(self._awaited):
            self._sent.set()
        elif request.url.path.endswith(self._held):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._sent.wait()
            self.came_while_held.append(self._sent.is_set())
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_kinds_first_page_is_confirmed_unchanged_while_the_kind_before_loads(
    runner_settings: RunnerSettings,
) -> None:
    fake = FakeSettings(persons=PERSONS, page_size=50)
    await run_once(runner_settings, fake)
    transport = HoldingTransport(
        held="/blueprints/fakeProject/entities/unchanged",
        awaited="/blueprints/fakePerson/entities/unchanged",
    )
    runner = IntegrationRunner(create_integration(fake), runner_settings, transport=transport)
    try:
        record = await runner.once()
    finally:
        await runner.aclose()

    assert record.status is RunStatus.COMPLETED, record.to_json()
    # the persons' first page was asked about while the projects' question was pending
    assert transport.came_while_held == [True]
    persons = kind(record, "fake-person")
    assert (persons.unchanged, persons.upserted) == (PERSONS, 0)
    assert all(k.unchanged == k.fetched and k.upserted == 0 for k in record.kinds)


async def test_a_refused_page_stops_its_kind_after_the_page_in_flight(
    runner_settings: RunnerSettings, admin: httpx.AsyncClient
) -> None:
    await run_once(runner_settings, FakeSettings(persons=PERSONS, page_size=50))
    config = (await admin.get("/v1/integration/fake-org")).json()["integration"]["config"]
    person = next(r for r in config["resources"] if r["kind"] == "fake-person")
    # every title changes; person-60 (page 2 of 4) gets one the catalog refuses
    person["port"]["entity"]["mappings"]["title"] = (
        'if .id == "person-60" then 5 else .name + " (renamed)" end'
    )
    await admin.patch(
        "/v1/integration/fake-org/config",
        json={"config": config},
        headers={"x-skip-resync": "true"},
    )
    record = await run_once(runner_settings, FakeSettings(persons=PERSONS, page_size=50))

    persons = kind(record, "fake-person")
    assert persons.status.value == "failed" and persons.failed == 1
    assert record.delete_phase.status == "skipped"
    renamed = {
        int(e["identifier"].removeprefix("person-"))
        for e in await entities_of(admin, "fakePerson", "identifier", "title")
        if e["title"].endswith(" (renamed)")
    }
    # pages 1 and 2 (but for the refused entity) and page 3, already in flight when page 2
    # was refused, are written; page 4 is never sent; the counts say exactly that
    assert renamed == set(range(150)) - {60}
    assert persons.upserted == len(renamed)


# below the integration's pages (100) and its delete batches (1000)
@pytest.mark.parametrize("catalog", [{"max_bulk_entities": 40}], indirect=True)
async def test_a_catalog_with_smaller_bulk_limits_still_gets_every_write_and_delete(
    runner_settings: RunnerSettings, admin: httpx.AsyncClient
) -> None:
    first = await run_once(runner_settings, FakeSettings(persons=1000, page_size=100))
    assert first.status is RunStatus.COMPLETED, first.to_json()
    assert len(await owned(admin, "fakePerson")) == 1000
    fake = FakeSettings(persons=1000, page_size=100, generation=1)
    second = await run_once(runner_settings, fake)
    assert second.status is RunStatus.COMPLETED, second.to_json()
    expected = {i for i in range(1000) if person_present(fake.seed, i, 1)}
    assert second.delete_phase.deleted == 1000 - len(expected) > 40
    assert len(await owned(admin, "fakePerson")) == len(expected)


async def wait_for(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.05)


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


async def test_trigger_mid_run_aborts_and_next_run_completes(
    runner_settings: RunnerSettings, admin: httpx.AsyncClient
) -> None:
    slow = FakeSettings(persons=3000, page_size=100, page_latency=0.05)
    runner = IntegrationRunner(create_integration(slow), runner_settings)
    async with serving(runner):
        first = await wait_for(
            lambda: _run_with(
                admin, lambda r: r["status"] == "running" and r["totals"]["fetched"] > 0
            )
        )
        assert (await admin.patch("/v1/integration/fake-org", json={})).status_code == 200
        aborted = await wait_for(
            lambda: _run_with(admin, lambda r: r["id"] == first["id"] and r["status"] == "aborted")
        )
        assert aborted["abortedBy"] and aborted["deletePhase"]["status"] == "skipped"
        done = await wait_for(
            lambda: _run_with(
                admin, lambda r: r["id"] == aborted["abortedBy"] and r["status"] == "completed"
            ),
            60,
        )
        assert done["trigger"] == "api"
        person = next(k for k in done["kinds"] if k["kind"] == "fake-person")
        assert person["fetched"] == 3000 and person["upserted"] + person["unchanged"] == 3000
    summary = (await admin.get("/v1/integration/fake-org")).json()["integration"]["runSummary"]
    assert summary["lastCompletedRun"] == done["id"]


async def _run_with(admin: httpx.AsyncClient, predicate: Any) -> Any:
    runs = (await admin.get("/v1/integration/fake-org/runs")).json().get("runs", [])
    return next((r for r in runs if predicate(r)), None)


async def test_scheduled_interval_fires(
    runner_settings: RunnerSettings, admin: httpx.AsyncClient
) -> None:
    settings = replace(runner_settings, interval_minutes=0.5 / 60)  # every half second
    runner = IntegrationRunner(create_integration(FakeSettings(persons=20)), settings)
    async with serving(runner):
        await wait_for(
            lambda: _run_with(
                admin, lambda r: r["trigger"] == "schedule" and r["status"] == "completed"
            )
        )
    state = (await admin.get("/v1/integration/fake-org")).json()["integration"]["resyncState"]
    assert state["intervalInMinuets"] == pytest.approx(0.5 / 60)
    assert state["nextResync"] is not None


async def test_killed_integration_leaves_a_run_the_catalog_marks_failed(
    runner_settings: RunnerSettings, admin: httpx.AsyncClient, catalog: RunningCatalog
) -> None:
    env = {
        **os.environ,
        "SHOAL_CATALOG_URL": catalog.url,
        "SHOAL_CLIENT_ID": runner_settings.client_id or "",
        "SHOAL_CLIENT_SECRET": runner_settings.client_secret or "",
        "SHOAL_INTEGRATION_IDENTIFIER": "fake-org",
        "SHOAL_FAKE_PERSONS": "100000",
        "SHOAL_FAKE_PAGE_SIZE": "100",
        "SHOAL_FAKE_PAGE_LATENCY": "0.2",
    }
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
    try:
        running = await wait_for(lambda: _run_with(admin, lambda r: r["status"] == "running"), 30)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    failed = await wait_for(
        lambda: _run_with(admin, lambda r: r["id"] == running["id"] and r["status"] == "failed")
    )
    assert "heartbeat" in failed["failureReason"]
    state = (await admin.get("/v1/integration/fake-org")).json()["integration"]["resyncState"]
    assert state["status"] == "failed"
