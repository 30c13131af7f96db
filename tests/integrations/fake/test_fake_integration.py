"""create_integration: handlers per kind, paging, latency and injected failures."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from shoal.errors import SourceError
from shoal.integrations.fake import (
    KINDS,
    PERSON_KIND,
    TEAM_KIND,
    FakeSettings,
    create_integration,
    iter_pages,
    load_default_blueprints,
    load_default_mapping,
)
from shoal.sync.integration import Integration, RawBatch


async def _drain(batches: AsyncIterator[RawBatch], into: list[RawBatch]) -> None:
    async for batch in batches:
        into.append(batch)


async def _collect(integration: Integration, kind: str) -> list[RawBatch]:
    return [batch async for batch in integration.fetch(kind)]


async def test_integration_shape() -> None:
    integration = create_integration(FakeSettings(persons=10))
    assert integration.type == "fake"
    assert integration.kinds == list(KINDS)
    assert integration.default_mapping == load_default_mapping()
    assert integration.default_blueprints == load_default_blueprints()


async def test_settings_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_FAKE_PERSONS", "3")
    monkeypatch.setenv("SHOAL_FAKE_PAGE_SIZE", "2")
    batches = await _collect(create_integration(), PERSON_KIND)
    assert [len(batch) for batch in batches] == [2, 1]


@pytest.mark.parametrize("kind", KINDS)
async def test_handlers_serve_the_generator_pages(kind: str) -> None:
    settings = FakeSettings(persons=25_000, page_size=700, generation=2, item_size=400)
    batches = await _collect(create_integration(settings), kind)
    assert batches == list(iter_pages(settings, kind))


async def test_injected_failure_after_n_pages() -> None:
    settings = FakeSettings(persons=5000, page_size=1000, fail_kind=PERSON_KIND, fail_after_pages=2)
    integration = create_integration(settings)
    served: list[RawBatch] = []
    with pytest.raises(SourceError, match="injected failure fetching 'fake-person' after 2 page"):
        await _drain(integration.fetch(PERSON_KIND), served)
    assert served == list(iter_pages(settings, PERSON_KIND))[:2]
    # Other kinds are not affected.
    assert await _collect(integration, TEAM_KIND) == list(iter_pages(settings, TEAM_KIND))


async def test_injected_failure_before_the_first_page() -> None:
    integration = create_integration(FakeSettings(fail_kind=TEAM_KIND))
    with pytest.raises(SourceError, match="after 0 page"):
        await _collect(integration, TEAM_KIND)


async def test_injected_failure_always_happens_even_past_the_last_page() -> None:
    settings = FakeSettings(persons=1500, fail_kind=PERSON_KIND, fail_after_pages=10)
    served: list[RawBatch] = []
    with pytest.raises(SourceError, match="after 2 page"):
        await _drain(create_integration(settings).fetch(PERSON_KIND), served)
    assert [len(batch) for batch in served] == [1000, 500]


async def test_page_latency_is_awaited_per_page() -> None:
    settings = FakeSettings(persons=30, page_size=10, page_latency=0.02)
    started = time.perf_counter()
    batches = await _collect(create_integration(settings), PERSON_KIND)
    assert len(batches) == 3
    assert time.perf_counter() - started >= 0.06
