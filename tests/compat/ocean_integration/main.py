"""A small Port Ocean integration for Shoal's compatibility suite (run by Ocean, not by Shoal).

Source data: the JSON file named by ``COMPAT_SOURCE_FILE``, read at every resync::

    {"team": [...], "service": [...], "deployment": [...], "delaySeconds": {"service": 5}}

Each kind yields its items in batches of ``BATCH``; ``delaySeconds`` makes a kind sleep before
each batch (to catch a resync mid-run). ``COMPAT_FAIL_KINDS`` (comma-separated kinds) makes those
kinds raise after their first batch.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from port_ocean.context.ocean import ocean

BATCH = 15


def _source() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(os.environ["COMPAT_SOURCE_FILE"]).read_text())
    return data


async def _batches(kind: str) -> AsyncIterator[list[dict[str, Any]]]:
    source = _source()
    items: list[dict[str, Any]] = source.get(kind, [])
    delay = float(source.get("delaySeconds", {}).get(kind, 0))
    failing = kind in os.environ.get("COMPAT_FAIL_KINDS", "").split(",")
    for start in range(0, len(items), BATCH):
        if delay:
            await asyncio.sleep(delay)
        yield items[start : start + BATCH]
        if failing:
            break
    if failing:
        message = f"{kind} failed on purpose (COMPAT_FAIL_KINDS)"
        raise RuntimeError(message)


@ocean.on_resync("team")
async def resync_teams(kind: str) -> AsyncIterator[list[dict[str, Any]]]:
    async for batch in _batches(kind):
        yield batch


@ocean.on_resync("service")
async def resync_services(kind: str) -> AsyncIterator[list[dict[str, Any]]]:
    async for batch in _batches(kind):
        yield batch


@ocean.on_resync("deployment")
async def resync_deployments(kind: str) -> AsyncIterator[list[dict[str, Any]]]:
    async for batch in _batches(kind):
        yield batch
