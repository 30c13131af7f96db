"""When a resync asks a Shoal catalog about unchanged entities by digest before sending them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.sync.integration import Integration
from shoal.sync.resync import DigestProbe
from shoal.sync.run_record import KindStatus, RunStatus
from tests.sync.test_deletes import LoggingTransport, run_once


def asks(probe: DigestProbe, loads: int) -> list[bool]:
    return [probe.ask() for _ in range(loads)]


def test_keeps_asking_while_nearly_everything_is_unchanged() -> None:
    probe = DigestProbe()
    for _ in range(5):
        assert probe.ask()
        probe.answered(unchanged=990, asked=1000)


def test_backs_off_while_much_has_changed_then_asks_again() -> None:
    probe = DigestProbe()
    skipped: list[int] = []
    for _ in range(7):
        run = 0
        while not probe.ask():
            run += 1
        skipped.append(run)
        probe.answered(unchanged=850, asked=1000)  # ~15% changed: the question does not pay
    # loads skipped before each question: none, then doubling up to MAX_SKIP
    assert skipped == [0, 1, 2, 4, 8, 16, DigestProbe.MAX_SKIP]


def test_a_good_answer_ends_the_back_off() -> None:
    probe = DigestProbe()
    probe.answered(unchanged=0, asked=1000)
    assert asks(probe, 2) == [False, True]
    probe.answered(unchanged=1000, asked=1000)
    assert asks(probe, 3) == [True, True, True]


def test_a_catalog_without_the_route_is_never_asked_again() -> None:
    probe = DigestProbe()
    probe.supported = False
    assert asks(probe, 3) == [False, False, False]


def test_while_backing_off_one_question_at_a_time_probes() -> None:
    probe = DigestProbe()
    assert asks(probe, 2) == [True, True]  # nothing known yet: loads in flight ask side by side
    probe.answered(unchanged=0, asked=1000)
    probe.answered(unchanged=0, asked=1000)
    assert asks(probe, 2) == [False, False]  # backing off (skip 2)
    assert asks(probe, 3) == [True, False, False]  # the first asks; the others do not wait for it
    probe.answered(unchanged=1000, asked=1000)  # the probe finds nearly everything unchanged
    assert asks(probe, 2) == [True, True]


def test_a_withdrawn_question_lets_the_next_load_probe() -> None:
    probe = DigestProbe()
    probe.answered(unchanged=0, asked=1000)
    assert asks(probe, 2) == [False, True]
    assert not probe.ask()  # the probe is in flight
    probe.withdrawn()  # ... and got no answer
    assert probe.ask()


BLUEPRINTS = [{"identifier": "service", "title": "Service", "schema": {"properties": {}}}]
KINDS = ("first", "second", "third")


def digest_mapping() -> dict[str, Any]:
    """Three kinds that all write blueprint ``service``: they share its probe."""
    return {
        "createMissingRelatedEntities": False,
        "entityDeletionThreshold": 1.0,
        "resources": [
            {"kind": kind, "selector": {"query": "true"}, "port": {"entity": {"mappings": {
                "identifier": ".id", "title": ".id", "blueprint": '"service"'}}}}
            for kind in KINDS
        ],
    }  # fmt: skip


class QuestionTransport(LoggingTransport):
    """Real HTTP; notes the identifiers each question by digest asked about, and refuses the
    ``refused``-th question (counting from 1), as a catalog refuses bad input."""

    def __init__(self, refused: int) -> None:
        super().__init__()
        self._refused = refused
        self.questions: list[list[str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/entities/unchanged"):
            body = orjson.loads(await request.aread())
            self.questions.append([item["identifier"] for item in body["entities"]])
            if len(self.questions) == self._refused:
                refusal = {"ok": False, "error": "invalid_request", "message": "refused on purpose"}
                return httpx.Response(422, json=refusal)
        return await super().handle_async_request(request)


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[RunningCatalog]:
    settings = CatalogSettings(
        port=0, data_dir=tmp_path / "d", database_url=f"sqlite:///{tmp_path / 'c.db'}"
    )
    async with running_catalog(settings) as running:
        yield running


async def test_a_failed_probe_does_not_stop_later_loads_of_its_blueprint_from_asking(
    catalog: RunningCatalog,
) -> None:
    # The catalog is empty, so the first kind's question finds nothing unchanged and the
    # probe of "service" backs off: the second kind's first page skips the question and its
    # second page probes; that question is refused, which stops the kind. The third kind
    # writes "service" too, in the same run: its load must ask again, not wait for an answer
    # to the refused question that will never come.
    pages = {
        "first": [[f"a-{i}" for i in range(5)]],
        "second": [[f"b-{i}" for i in range(5)], [f"b-{i}" for i in range(5, 10)]],
        "third": [[f"c-{i}" for i in range(5)]],
    }
    integration = Integration(
        "toy", default_mapping=digest_mapping(), default_blueprints=BLUEPRINTS
    )

    async def fetch(kind: str) -> AsyncIterator[list[dict[str, Any]]]:
        for page in pages[kind]:
            yield [{"id": identifier} for identifier in page]

    for kind in KINDS:
        integration.on_resync(kind)(fetch)
    transport = QuestionTransport(refused=2)
    async with asyncio.timeout(20):
        record = await run_once(catalog, integration, transport)

    assert transport.questions == [pages["first"][0], pages["second"][1], pages["third"][0]]
    first, second, third = record.kinds
    assert (first.status, first.upserted) == (KindStatus.COMPLETED, 5)
    assert second.status is KindStatus.FAILED and second.upserted == 5  # its first page
    assert (third.status, third.upserted) == (KindStatus.COMPLETED, 5)
    assert record.status is RunStatus.FAILED
