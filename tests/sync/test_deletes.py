"""The delete phase: protected relation targets and dependents-before-targets order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.sync.integration import Integration
from shoal.sync.run_record import RunStatus
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings
from tests.conftest import admin_client, admin_credentials

BLUEPRINTS = [
    {"identifier": "squad", "title": "Squad", "schema": {"properties": {}}},
    {
        "identifier": "service",
        "title": "Service",
        "schema": {"properties": {"lang": {"type": "string"}}},
        "relations": {"squad": {"target": "squad", "many": False}},
    },
]


def mapping(
    *, delete_dependents: bool, kinds: tuple[str, ...] = ("squad", "service")
) -> dict[str, Any]:
    resources = {
        "squad": {"kind": "squad", "selector": {"query": "true"}, "port": {"entity": {"mappings": {
            "identifier": ".id", "title": ".id", "blueprint": '"squad"'}}}},
        "service": {"kind": "service", "selector": {"query": "true"}, "port": {"entity": {"mappings": {
            "identifier": ".id", "title": ".id", "blueprint": '"service"',
            "properties": {"lang": ".lang"}, "relations": {"squad": ".squad"}}}}},
    }  # fmt: skip
    return {
        "deleteDependentEntities": delete_dependents,
        "createMissingRelatedEntities": True,
        "entityDeletionThreshold": 1.0,
        "resources": [resources[kind] for kind in kinds],
    }


def make_integration(
    squads: list[str], services: list[tuple[str, str]], config: dict[str, Any]
) -> Integration:
    integration = Integration("toy", default_mapping=config, default_blueprints=BLUEPRINTS)

    @integration.on_resync("squad")
    async def fetch_squads(kind: str) -> list[dict[str, Any]]:
        return [{"id": squad} for squad in squads]

    @integration.on_resync("service")
    async def fetch_services(kind: str) -> AsyncIterator[list[dict[str, Any]]]:
        yield [{"id": name, "lang": "python", "squad": squad} for name, squad in services]

    return integration


class LoggingTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[RunningCatalog]:
    settings = CatalogSettings(
        port=0, data_dir=tmp_path / "d", database_url=f"sqlite:///{tmp_path / 'c.db'}"
    )
    async with running_catalog(settings) as running:
        yield running


async def run_once(
    catalog: RunningCatalog,
    integration: Integration,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    port_like: bool = False,
) -> Any:
    creds = admin_credentials(catalog)
    settings = RunnerSettings(
        catalog_url=catalog.url,
        client_id=creds["clientId"],
        client_secret=creds["clientSecret"],
        identifier="toy",
        target_is_port=port_like,
    )
    runner = IntegrationRunner(integration, settings, transport=transport)
    try:
        return await runner.once()
    finally:
        await runner.aclose()


async def identifiers(catalog: RunningCatalog, blueprint: str) -> set[str]:
    async with await admin_client(catalog) as client:
        response = await client.get(f"/v1/blueprints/{blueprint}/entities", params={"limit": 1000})
    return {entity["identifier"] for entity in response.json()["entities"]}


async def relation_of(catalog: RunningCatalog, blueprint: str, identifier: str, name: str) -> Any:
    async with await admin_client(catalog) as client:
        response = await client.get(f"/v1/blueprints/{blueprint}/entities/{identifier}")
    return response.json()["entity"]["relations"][name]


async def test_auto_created_relation_targets_of_kept_entities_are_not_deleted(
    catalog: RunningCatalog,
) -> None:
    # squads are never fetched: they exist only as relation targets created on demand
    config = mapping(delete_dependents=False, kinds=("service",))
    services = [("billing", "payments"), ("ledger", "payments"), ("search", "discovery")]
    first = await run_once(catalog, make_integration([], services, config))
    assert first.status is RunStatus.COMPLETED
    assert await identifiers(catalog, "squad") == {"payments", "discovery"}

    second = await run_once(catalog, make_integration([], services[:2], config))
    assert second.status is RunStatus.COMPLETED, second.to_json()
    assert await identifiers(catalog, "service") == {"billing", "ledger"}
    # "payments" is stale (not fetched) but a kept service points at it; "discovery" is not kept
    assert await identifiers(catalog, "squad") == {"payments"}


async def test_against_a_port_like_catalog_targets_of_kept_entities_are_not_deleted(
    catalog: RunningCatalog,
) -> None:
    # Port-like: unchanged entities are found by reading them back and not sent, so the
    # entities sent are a part of the page, and their answers must be mapped back to it
    config = mapping(delete_dependents=False, kinds=("service",))
    services = [("billing", "payments"), ("ledger", "risk"), ("search", "discovery")]
    first = await run_once(catalog, make_integration([], services, config), port_like=True)
    assert first.status is RunStatus.COMPLETED

    integration = Integration("toy", default_mapping=config, default_blueprints=BLUEPRINTS)

    @integration.on_resync("service")
    async def fetch_services(kind: str) -> list[dict[str, Any]]:
        # billing unchanged; ledger changed (and so sent alone); search gone
        return [
            {"id": "billing", "lang": "python", "squad": "payments"},
            {"id": "ledger", "lang": "go", "squad": "risk"},
        ]

    second = await run_once(catalog, integration, port_like=True)
    assert second.status is RunStatus.COMPLETED, second.to_json()
    assert await identifiers(catalog, "squad") == {"payments", "risk"}


@pytest.mark.parametrize("delete_dependents", [True, False], ids=["cascade", "clear"])
async def test_a_stale_target_of_a_kept_entity_is_kept_without_created_targets(
    catalog: RunningCatalog, delete_dependents: bool
) -> None:
    # The source drops squad b but still has s2, which points at it. Deleting b would delete
    # s2 with it (deleteDependentEntities) or clear its relation: an entity the run just saw.
    config = mapping(delete_dependents=delete_dependents)
    config["createMissingRelatedEntities"] = False
    services = [("s1", "a"), ("s2", "b")]
    await run_once(catalog, make_integration(["a", "b", "c"], services, config))

    second = await run_once(catalog, make_integration(["a"], services, config))
    assert second.status is RunStatus.COMPLETED, second.to_json()
    assert second.delete_phase.deleted == 1  # c, which nothing kept points at
    assert await identifiers(catalog, "squad") == {"a", "b"}
    assert await identifiers(catalog, "service") == {"s1", "s2"}
    assert await relation_of(catalog, "service", "s2", "squad") == "b"

    third = await run_once(catalog, make_integration(["a"], services, config))
    assert third.status is RunStatus.COMPLETED, third.to_json()


async def test_dependents_are_deleted_before_their_targets(catalog: RunningCatalog) -> None:
    config = mapping(delete_dependents=False)
    await run_once(catalog, make_integration(["a", "b"], [("s1", "a"), ("s2", "b")], config))
    transport = LoggingTransport()
    record = await run_once(catalog, make_integration(["a"], [("s1", "a")], config), transport)
    assert record.delete_phase.status == "done" and record.delete_phase.deleted == 2
    deletes = [p for p in transport.paths if p.endswith("/bulk/entities/delete")]
    assert deletes == [
        "/v1/blueprints/service/bulk/entities/delete",
        "/v1/blueprints/squad/bulk/entities/delete",
    ]
    assert await identifiers(catalog, "squad") == {"a"}
    assert await identifiers(catalog, "service") == {"s1"}


async def test_dependents_the_catalog_deletes_with_their_targets_are_counted(
    catalog: RunningCatalog,
) -> None:
    config = mapping(delete_dependents=True)
    await run_once(catalog, make_integration(["a", "b"], [("s1", "a")], config))
    async with await admin_client(catalog) as admin:  # a service of someone else's, on squad b
        entity = {"identifier": "by-hand", "relations": {"squad": "b"}}
        response = await admin.post("/v1/blueprints/service/entities", json=entity)
        assert response.status_code == 201, response.text
    record = await run_once(catalog, make_integration(["a"], [("s1", "a")], config))
    # deleting the stale squad b (with the run's admin credential) took the service with it
    assert record.delete_phase.status == "done" and record.delete_phase.deleted == 2
    assert {k.kind: k.deleted for k in record.kinds} == {"squad": 1, "service": 1}
    assert await identifiers(catalog, "squad") == {"a"}
    assert await identifiers(catalog, "service") == {"s1"}


async def test_a_handler_raising_cancelled_error_fails_its_kind_not_the_run(
    catalog: RunningCatalog,
) -> None:
    config = mapping(delete_dependents=False)
    integration = Integration("toy", default_mapping=config, default_blueprints=BLUEPRINTS)

    @integration.on_resync("squad")
    async def squads(kind: str) -> AsyncIterator[list[dict[str, Any]]]:
        yield [{"id": "a"}]
        raise asyncio.CancelledError  # e.g. a source library cancelling its own request

    @integration.on_resync("service")
    async def services(kind: str) -> list[dict[str, Any]]:
        return [{"id": "s1", "lang": "go", "squad": "a"}]

    async with asyncio.timeout(20):
        record = await run_once(catalog, integration)
    assert record.status is RunStatus.FAILED
    squad = next(k for k in record.kinds if k.kind == "squad")
    assert squad.status.value == "failed"
    assert next(k for k in record.kinds if k.kind == "service").status.value == "completed"
    assert record.delete_phase.status == "skipped"


class ListingTransport(LoggingTransport):
    """Counts the entities the catalog listed to the delete phase."""

    def __init__(self) -> None:
        super().__init__()
        self.listed: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.path.endswith("/datasource-entities"):
            await response.aread()
            self.listed.extend(response.json()["entities"])
        return response


async def test_the_delete_phase_lists_only_entities_this_run_did_not_stamp(
    catalog: RunningCatalog,
) -> None:
    config = mapping(delete_dependents=False)
    services = [(f"svc-{i}", "core") for i in range(30)]
    first = await run_once(catalog, make_integration(["core"], services, config))
    assert first.status is RunStatus.COMPLETED
    assert first.delete_phase.owned == 31

    transport = ListingTransport()
    second = await run_once(catalog, make_integration(["core"], services[:29], config), transport)
    assert second.status is RunStatus.COMPLETED, second.to_json()
    # every kept entity was stamped by the run: only the stale one is listed, not all 31
    assert transport.listed == [{"blueprint": "service", "identifier": "svc-29"}]
    assert (second.delete_phase.owned, second.delete_phase.stale) == (31, 1)
    assert await identifiers(catalog, "service") == {f"svc-{i}" for i in range(29)}


class RefusingTransport(LoggingTransport):
    """Refuses the requests whose method and path match, as a catalog refuses bad input; with
    ``after_writes``, only once entities were written (so the delete phase's, not the setup's)."""

    def __init__(self, method: str, path_end: str, *, after_writes: bool = False) -> None:
        super().__init__()
        self._method, self._path_end = method, path_end
        self._armed = not after_writes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self._armed = self._armed or path.endswith(("/entities/bulk", "/entities/unchanged"))
        if self._armed and request.method == self._method and path.endswith(self._path_end):
            self.paths.append(path)
            body = {"ok": False, "error": "invalid_request", "message": "refused on purpose"}
            return httpx.Response(422, json=body)
        return await super().handle_async_request(request)


@pytest.mark.parametrize(
    ("method", "path_end"),
    [("POST", "/datasource-entities"), ("GET", "/v1/blueprints/service")],
    ids=["listing", "relation-blueprint"],
)
async def test_a_refused_delete_phase_request_fails_the_run_and_deletes_nothing(
    catalog: RunningCatalog, method: str, path_end: str
) -> None:
    config = mapping(delete_dependents=False)
    services = [(f"svc-{i}", "core") for i in range(3)]
    assert (await run_once(catalog, make_integration(["core"], services, config))).status is (
        RunStatus.COMPLETED
    )

    transport = RefusingTransport(method, path_end, after_writes=True)
    record = await run_once(catalog, make_integration(["core"], services[:1], config), transport)
    assert record.status is RunStatus.FAILED
    assert record.delete_phase.status == "failed"
    assert record.error is not None and record.error.startswith("delete phase failed:")
    assert "refused on purpose" in record.error
    assert await identifiers(catalog, "service") == {"svc-0", "svc-1", "svc-2"}


async def test_a_delete_phase_that_fails_part_way_reports_what_it_deleted(
    catalog: RunningCatalog,
) -> None:
    config = mapping(delete_dependents=False)
    services = [("s1", "a"), ("s2", "b")]
    await run_once(catalog, make_integration(["a", "b"], services, config))

    # stale: s2, deleted first (it points at b), then b, whose request is refused
    transport = RefusingTransport("POST", "/squad/bulk/entities/delete")
    record = await run_once(catalog, make_integration(["a"], services[:1], config), transport)
    assert record.status is RunStatus.FAILED
    assert record.delete_phase.status == "failed"
    assert record.delete_phase.deleted == record.totals()["deleted"] == 1
    assert await identifiers(catalog, "service") == {"s1"}
    assert await identifiers(catalog, "squad") == {"a", "b"}


async def test_a_run_the_catalog_refuses_to_record_fails_without_writing(
    catalog: RunningCatalog,
) -> None:
    config = mapping(delete_dependents=False)
    transport = RefusingTransport("PATCH", "/resync-state")
    record = await run_once(
        catalog, make_integration(["core"], [("svc", "core")], config), transport
    )
    assert record.status is RunStatus.FAILED
    assert record.error is not None and "refused on purpose" in record.error
    assert not any(path.endswith("/entities/bulk") for path in transport.paths)
    assert await identifiers(catalog, "service") == set()


class SlowStartTransport(LoggingTransport):
    """Refuses the run's read of the integration (its mapping config: the second read, after
    the setup's) and answers the first resync-state report late; notes when each resync-state
    report was sent and answered."""

    def __init__(self) -> None:
        super().__init__()
        self._reads = 0
        self.states: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.endswith("/integration/toy"):
            self._reads += 1
            if self._reads == 2:
                body = {"ok": False, "error": "invalid_request", "message": "refused on purpose"}
                return httpx.Response(422, json=body)
        if not path.endswith("/resync-state"):
            return await super().handle_async_request(request)
        status = json.loads(request.content)["status"]
        self.states.append(("sent", status))
        response = await super().handle_async_request(request)
        if len(self.states) == 1:
            await asyncio.sleep(0.3)
        self.states.append(("answered", status))
        return response


async def test_a_run_whose_config_cannot_be_read_is_reported_running_then_failed(
    catalog: RunningCatalog,
) -> None:
    config = mapping(delete_dependents=False)
    transport = SlowStartTransport()
    record = await run_once(
        catalog, make_integration(["core"], [("svc", "core")], config), transport
    )
    assert record.status is RunStatus.FAILED
    assert record.error is not None and "refused on purpose" in record.error
    # the "running" report was answered before the "failed" one left: they cannot cross
    assert transport.states == [
        ("sent", "running"),
        ("answered", "running"),
        ("sent", "failed"),
        ("answered", "failed"),
    ]
