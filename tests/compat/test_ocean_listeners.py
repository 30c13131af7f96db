"""Ocean's POLLING and WEBHOOK listeners against Shoal: resync requests reach a running Ocean."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.catalog.server import RunningCatalog, free_port
from shoal.clock import from_iso, now_us
from tests.compat.harness import (
    MISSING_VENV,
    OCEAN_PYTHON,
    OceanLauncher,
    entities,
    eventually,
    integration,
    integration_credential,
    kinds,
    runs,
    source_data,
    write_source,
)

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(not OCEAN_PYTHON.exists(), reason=MISSING_VENV),
]

INTERVAL = 1
"""Seconds between Ocean's polls of ``GET /resync-request``."""
PICKUP_SLACK = 2.0
"""Beyond one interval: the poll's own round trip and Ocean's resync-state PATCH."""


async def test_polling_picks_up_requests_aborts_on_a_newer_one_and_restarts_quietly(
    catalog: RunningCatalog, admin: httpx.AsyncClient, launcher: OceanLauncher, tmp_path: Path
) -> None:
    identifier = "compat-poll"
    credential = await integration_credential(catalog, identifier)
    source = tmp_path / "source.json"
    data = source_data()
    write_source(source, data)
    listener = {"type": "POLLING", "interval": INTERVAL, "resync_on_start": True}
    ocean = await launcher.start(identifier, credential, source, listener, port=free_port())

    async def completed_runs(count: int) -> list[dict[str, Any]] | None:
        found = await runs(admin, identifier)
        done = len(found) >= count and all(run["status"] != "running" for run in found)
        return found if done and found[0]["status"] == "completed" else None

    [first] = await eventually(
        lambda: completed_runs(1), timeout=60, what="the start resync", ocean=ocean
    )
    assert first["trigger"] == "start"

    # an API PATCH is a resync request; Ocean sees it at its next poll
    data["service"][0]["language"] = "go"
    write_source(source, data)
    patched_at = now_us()
    assert (await admin.patch(f"/v1/integration/{identifier}", json={})).status_code == 200
    found = await eventually(lambda: completed_runs(2), timeout=30, what="the PATCH", ocean=ocean)
    assert len(found) == 2
    api_run = found[0]
    assert api_run["trigger"] == "api"
    assert (from_iso(api_run["startedAt"]) - patched_at) / 1e6 < INTERVAL + PICKUP_SLACK
    services = await entities(admin, identifier, "compatService")
    assert services["s00"]["properties"]["language"] == "go"

    # the UI's Resync button records the same kind of request
    response = await admin.post(f"/v1/integration/{identifier}/resync", json={"source": "ui"})
    request = response.json()["request"]
    found = await eventually(lambda: completed_runs(3), timeout=30, what="the UI", ocean=ocean)
    assert len(found) == 3
    assert (found[0]["trigger"], found[0]["triggerRequest"]) == ("ui", request["id"])
    assert (from_iso(found[0]["startedAt"]) - from_iso(request["createdAt"])) / 1e6 < (
        INTERVAL + PICKUP_SLACK
    )

    # a PATCH while a resync runs aborts it, and the next run completes
    write_source(source, {**data, "delaySeconds": {"service": 60}})
    await admin.patch(f"/v1/integration/{identifier}", json={})

    async def slow_kind_running() -> dict[str, Any] | None:
        found = await runs(admin, identifier)
        run = found[0] if len(found) > 3 else None
        if run and kinds(run).get("service", {}).get("status") == "running":
            return run
        return None

    slow = await eventually(slow_kind_running, timeout=30, what="the slow run", ocean=ocean)
    data["service"][1]["language"] = "rust"
    write_source(source, data)
    await admin.patch(f"/v1/integration/{identifier}", json={})
    found = await eventually(lambda: completed_runs(5), timeout=30, what="the new run", ocean=ocean)
    newest, aborted = found[0], found[1]
    assert aborted["id"] == slow["id"]
    assert aborted["status"] == "aborted"
    assert aborted["abortedBy"] == newest["id"]
    assert kinds(aborted)["service"]["status"] == "aborted"
    assert aborted["deletePhase"]["status"] == "skipped"
    assert newest["trigger"] == "api"
    services = await entities(admin, identifier, "compatService")
    assert services["s01"]["properties"]["language"] == "rust"
    record = await integration(admin, identifier)
    assert record is not None
    assert record["resyncState"]["status"] == "completed"

    # a restart resyncs once (resync_on_start) and does not replay the handled request
    assert await ocean.interrupt() == 0
    before = len(await runs(admin, identifier))
    ocean = await launcher.start(identifier, credential, source, listener, port=free_port())
    found = await eventually(
        lambda: completed_runs(before + 1), timeout=60, what="the restart resync", ocean=ocean
    )
    assert found[0]["trigger"] == "start"
    await asyncio.sleep(3 * INTERVAL + 1)
    assert len(await runs(admin, identifier)) == before + 1, ocean.log_tail()


async def test_webhook_listener_is_called_by_the_catalog_on_a_patch(
    catalog: RunningCatalog, admin: httpx.AsyncClient, launcher: OceanLauncher, tmp_path: Path
) -> None:
    identifier = "compat-hook"
    credential = await integration_credential(catalog, identifier)
    source = tmp_path / "source.json"
    data = source_data()
    write_source(source, data)
    port = free_port()
    listener = {"type": "WEBHOOK", "app_host": f"http://127.0.0.1:{port}"}
    ocean = await launcher.start(identifier, credential, source, listener, port=port)

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{port}/health/ready")
        except httpx.TransportError:
            return False
        return response.status_code == 200

    await eventually(ready, timeout=60, what="Ocean's web server", ocean=ocean)
    record = await integration(admin, identifier)
    assert record is not None
    destination = {"type": "WEBHOOK", "url": f"http://127.0.0.1:{port}/resync"}
    assert record["changelogDestination"] == destination

    # Ocean's own startup PATCHes are requests too (Port's rule): let their resyncs settle
    async def settled() -> list[dict[str, Any]] | None:
        before = await runs(admin, identifier)
        await asyncio.sleep(1.5)
        after = await runs(admin, identifier)
        quiet = len(after) == len(before) and all(r["status"] != "running" for r in after)
        if not quiet:
            return None
        return after or [{"none": "yet"}]

    await eventually(settled, timeout=30, what="startup resyncs to settle", ocean=ocean)

    data["service"][0]["language"] = "go"
    write_source(source, data)
    patched_at = now_us()
    assert (await admin.patch(f"/v1/integration/{identifier}", json={})).status_code == 200

    async def api_run() -> dict[str, Any] | None:
        for run in await runs(admin, identifier):
            if run["trigger"] == "api" and run["status"] == "completed":
                return run
        return None

    run = await eventually(api_run, timeout=30, what="the webhook resync", ocean=ocean)
    assert from_iso(run["startedAt"]) > patched_at
    assert kinds(run)["service"]["fetched"] == 30
    services = await entities(admin, identifier, "compatService")
    assert services["s00"]["properties"]["language"] == "go"
