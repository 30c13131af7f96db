"""Ocean's ONCE listener against Shoal: create, update, delete, a failing kind, a killed process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.catalog.server import RunningCatalog, free_port
from shoal.clock import from_iso
from tests.compat.conftest import STALE_RUN_SECONDS
from tests.compat.harness import (
    INTEGRATION_TYPE,
    INTEGRATION_VERSION,
    MISSING_VENV,
    OCEAN_PYTHON,
    Ocean,
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

ONCE = {"type": "ONCE"}


async def run_once(
    launcher: OceanLauncher,
    identifier: str,
    credential: tuple[str, str],
    source: Path,
    env: dict[str, str] | None = None,
) -> Ocean:
    ocean = await launcher.start(identifier, credential, source, ONCE, port=free_port(), env=env)
    code = await ocean.wait(90)
    assert code == 0, ocean.log_tail()
    return ocean


def counts(run: dict[str, Any]) -> dict[str, tuple[str, int, int]]:
    return {name: (k["status"], k["fetched"], k["upserted"]) for name, k in kinds(run).items()}


def assert_state_is_what_ocean_reported(record: dict[str, Any], run: dict[str, Any]) -> None:
    state = record["resyncState"]
    assert state["status"] == run["status"]
    assert from_iso(state["lastResyncStart"]) == from_iso(run["startedAt"])
    assert from_iso(state["lastResyncEnd"]) == from_iso(run["endedAt"])
    assert record["updatedAt"] == state["updatedAt"]  # Ocean < 0.44.1's polling watermark


async def test_first_run_creates_everything_then_a_second_updates_and_deletes(
    catalog: RunningCatalog, admin: httpx.AsyncClient, launcher: OceanLauncher, tmp_path: Path
) -> None:
    identifier = "compat-once"
    credential = await integration_credential(catalog, identifier)
    source = tmp_path / "source.json"
    write_source(source, source_data())
    assert await integration(admin, identifier) is None

    ocean = await run_once(launcher, identifier, credential, source)

    record = await integration(admin, identifier)
    assert record is not None, ocean.log_tail()
    assert record["installationAppType"] == INTEGRATION_TYPE
    assert record["version"] == INTEGRATION_VERSION
    assert record["arePortResourcesInitialized"] is True
    assert [r["kind"] for r in record["config"]["resources"]] == ["team", "service", "deployment"]
    service_bp = (await admin.get("/v1/blueprints/compatService")).json()["blueprint"]
    assert service_bp["relations"]["team"]["target"] == "compatTeam"
    assert service_bp["schema"]["properties"]["tier"]["type"] == "number"
    teams = await entities(admin, identifier, "compatTeam")
    services = await entities(admin, identifier, "compatService")
    deployments = await entities(admin, identifier, "compatDeployment")
    assert (len(teams), len(services), len(deployments)) == (4, 30, 10)
    assert services["s05"]["relations"]["team"] == "t1"
    assert services["s05"]["properties"] == {"language": "python", "tier": 2}
    assert deployments["d03"]["title"] == "s03 @ prod"
    assert deployments["d03"]["relations"]["service"] == "s03"

    [first] = await runs(admin, identifier)
    assert first["status"] == "completed", first
    assert first["trigger"] == "start"
    assert counts(first) == {
        "team": ("completed", 4, 4),
        "service": ("completed", 30, 30),
        "deployment": ("completed", 10, 10),
    }
    assert first["deletePhase"]["status"] == "done"
    assert first["totals"]["deleted"] == 0
    assert_state_is_what_ocean_reported(record, first)

    # the source changes: updates, a new item, removed items, one filtered out by the selector.
    # Ocean 0.56 computes its deletion rate over the entities this resync did not write (the
    # `before` filter), so most items stay unchanged: Ocean skips those (batches over 10 items).
    data = source_data(services=26, deployments=9)
    data["service"][0]["language"] = "go"
    data["team"][0]["size"] = 42
    data["service"][20]["archived"] = True  # selector `.archived != true`: no longer synced
    data["service"].append({"id": "s99", "name": "New", "language": "go", "tier": 1, "team": "t3"})
    write_source(source, data)

    await run_once(launcher, identifier, credential, source)

    teams = await entities(admin, identifier, "compatTeam")
    services = await entities(admin, identifier, "compatService")
    deployments = await entities(admin, identifier, "compatDeployment")
    assert teams["t0"]["properties"]["size"] == 42
    expected = {f"s{i:02d}" for i in range(26)} - {"s20"} | {"s99"}
    assert set(services) == expected
    assert services["s00"]["properties"]["language"] == "go"
    assert services["s01"]["properties"]["language"] == "python"
    assert services["s99"]["relations"]["team"] == "t3"
    assert set(deployments) == {f"d{i:02d}" for i in range(9)}

    second, _ = await runs(admin, identifier)
    assert second["status"] == "completed", second
    assert second["trigger"] == "start"
    service = kinds(second)["service"]
    assert (service["fetched"], service["filteredOut"], service["mapped"]) == (27, 1, 26)
    assert (service["upserted"], service["unchanged"]) == (2, 24)  # s00 and s99 were written
    assert kinds(second)["team"]["upserted"] >= 1
    assert second["deletePhase"]["status"] == "done"
    assert second["totals"]["deleted"] == 6  # s20, s26-s29 and d09
    record = await integration(admin, identifier)
    assert record is not None
    assert_state_is_what_ocean_reported(record, second)


async def test_a_failing_kind_skips_deletes_and_the_run_fails(
    catalog: RunningCatalog, admin: httpx.AsyncClient, launcher: OceanLauncher, tmp_path: Path
) -> None:
    identifier = "compat-fail"
    credential = await integration_credential(catalog, identifier)
    source = tmp_path / "source.json"
    write_source(source, source_data())
    await run_once(launcher, identifier, credential, source)

    write_source(source, source_data(services=25, deployments=5, language="rust"))
    await run_once(
        launcher, identifier, credential, source, env={"COMPAT_FAIL_KINDS": "deployment"}
    )

    services = await entities(admin, identifier, "compatService")
    assert len(services) == 30  # s25-s29 are gone from the source, but deletes were skipped
    languages = {name: entity["properties"]["language"] for name, entity in services.items()}
    assert {languages[f"s{i:02d}"] for i in range(25)} == {"rust"}  # other kinds still loaded
    assert {languages[f"s{i:02d}"] for i in range(25, 30)} == {"python"}  # stale, kept
    assert len(await entities(admin, identifier, "compatDeployment")) == 10

    failed, _ = await runs(admin, identifier)
    assert failed["status"] == "failed", failed
    assert kinds(failed)["deployment"]["status"] == "failed"
    assert kinds(failed)["deployment"]["errors"]
    assert kinds(failed)["service"]["status"] == "completed"
    assert failed["deletePhase"]["status"] == "skipped"
    assert "deployment" in failed["deletePhase"]["reason"]
    assert "deployment" in failed["error"]
    record = await integration(admin, identifier)
    assert record is not None
    assert_state_is_what_ocean_reported(record, failed)


async def test_a_killed_ocean_process_leaves_a_failed_run_not_a_running_one(
    catalog: RunningCatalog, admin: httpx.AsyncClient, launcher: OceanLauncher, tmp_path: Path
) -> None:
    identifier = "compat-kill"
    credential = await integration_credential(catalog, identifier)
    source = tmp_path / "source.json"
    write_source(source, {**source_data(), "delaySeconds": {"service": 60}})
    ocean = await launcher.start(identifier, credential, source, ONCE, port=free_port())

    async def service_running() -> dict[str, Any] | None:
        found = await runs(admin, identifier)
        if found and kinds(found[0]).get("service", {}).get("status") == "running":
            return found[0]
        return None

    run = await eventually(service_running, timeout=60, what="the slow kind to run", ocean=ocean)
    assert kinds(run)["team"]["status"] == "completed"
    await asyncio.sleep(STALE_RUN_SECONDS + 1.5)  # Ocean's heartbeats keep the run alive
    [run] = await runs(admin, identifier)
    assert run["status"] == "running", run

    await ocean.kill()

    async def failed() -> dict[str, Any] | None:
        found = await runs(admin, identifier)
        return found[0] if found and found[0]["status"] != "running" else None

    run = await eventually(failed, timeout=STALE_RUN_SECONDS + 5, what="the stale-run sweeper")
    assert run["status"] == "failed"
    assert "heartbeat" in run["failureReason"]
    assert run["deletePhase"]["status"] == "skipped"
    record = await integration(admin, identifier)
    assert record is not None
    assert record["resyncState"]["status"] == "failed"
