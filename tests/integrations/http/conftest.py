"""A :class:`FakeApi` served on loopback for every test of the http integration."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integrations.http.api import FakeApi, serving


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
async def base_url(api: FakeApi) -> AsyncIterator[str]:
    async with serving(api) as url:
        yield url
