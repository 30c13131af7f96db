"""The fake source as an API client would see it: pages, latency and injected failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from shoal.errors import SourceError
from shoal.integrations.fake.generator import iter_pages
from shoal.integrations.fake.settings import FakeSettings
from shoal.types import JSONObject

__all__ = ["fetch_pages"]


async def fetch_pages(settings: FakeSettings, kind: str) -> AsyncIterator[list[JSONObject]]:
    """Yield the pages of ``kind``, awaiting ``settings.page_latency`` before each one.

    When ``kind`` is ``settings.fail_kind``, :class:`~shoal.errors.SourceError` is raised after
    ``settings.fail_after_pages`` pages -- or after the last page if the kind has fewer, so an
    injected failure always happens.

    The sleep happens even when the latency is 0: every page is one trip through the event
    loop, as with a real API, so a resync running on this source can be aborted promptly.
    """
    failing = settings.fail_kind == kind
    served = 0
    for page in iter_pages(settings, kind):
        if failing and served >= settings.fail_after_pages:
            break
        await asyncio.sleep(settings.page_latency)
        yield page
        served += 1
    if failing:
        message = f"fake source: injected failure fetching {kind!r} after {served} page(s)"
        raise SourceError(message)
