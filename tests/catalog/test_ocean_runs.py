"""Ocean's runs in the catalog's history: synthesised from resync state and metrics.

The events below are shaped like those port-ocean 0.56.2 sent in tests/compat (recorded).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from shoal.catalog.auth import Role
from shoal.catalog.integrations import ResyncRequest
from shoal.catalog.ocean_runs import (
    apply_kind_metrics,
    end_run,
    kind_progress,
    mark_superseded,
    on_schedule,
    replace_run,
    run_trigger,
    settle_run,
    start_run,
)
from shoal.catalog.server import RunningCatalog
from shoal.clock import from_iso, to_datetime
from tests.catalog.helpers import client_as, create_integration, iso

NOW = from_iso("2026-11-27T04:31:13.569069+00:00")


def event(kind_key: str, state: str, **counts: float) -> dict[str, Any]:
    """An Ocean kind metrics event (``syncKindMetrics``)."""

    def count(name: str) -> dict[str, float]:
        return {"object_count": counts.get(name, 0.0)}

    kind, _, index = kind_key.rpartition("-")
    return {
        "integrationType": "testint",
        "integrationIdentifier": "my-testint",
        "integrationVersion": "0.3.1",
        "oceanVersion": "0.56.2",
        "kindIdentifier": kind_key,
        "kind": kind if index.isdigit() else kind_key,
        "kindIndex": int(index) if index.isdigit() else 0,
        "eventId": "ev-1",
        "syncState": state,
        "blueprint": '"rsItem"',
        "metrics": {
            "phase": {
                "resync": {"duration_seconds": 0.07, "success": 1.0},
                "extract": {"object_count_type": {"raw_extracted": count("extracted")}},
                "transform": {
                    "object_count_type": {
                        "transformed": count("transformed"),
                        "filtered_out": count("filtered"),
                        "failed": count("transform_failed"),
                    }
                },
                "load": {
                    "object_count_type": {
                        "loaded": count("loaded"),
                        "failed": count("load_failed"),
                        "skipped": count("skipped"),
                    }
                },
            }
        },
    }


def reconciliation(state: str, deleted: float) -> dict[str, Any]:
    return {
        "kindIdentifier": "__reconciliation__",
        "eventId": "ev-1",
        "syncState": state,
        "metrics": {
            "phase": {
                "resync": {"success": 1.0},
                "delete": {"object_count_type": {"deleted": {"object_count": deleted}}},
            }
        },
    }


def running_state(start: str = "2026-11-27T04:31:13.569069+00:00") -> dict[str, Any]:
    return {"status": "running", "lastResyncStart": start, "lastResyncEnd": None}


def test_kind_progress_maps_ocean_phases_to_run_counts() -> None:
    progress = kind_progress(
        event(
            "item-1",
            "completed",
            extracted=12,
            transformed=10,
            filtered=2,
            transform_failed=1,
            loaded=7,
            skipped=3,
            load_failed=1,
        )
    )
    assert progress == {
        "kind": "item",
        "index": 1,
        "status": "completed",
        "fetched": 12,
        "mapped": 10,
        "filteredOut": 2,
        "upserted": 7,
        "unchanged": 3,
        "failed": 2,
        "deleted": 0,
        "errors": [],
    }
    assert kind_progress(event("item-1", "syncing"))["status"] == "running"
    failed = kind_progress(event("item-1", "failed"))
    assert failed["status"] == "failed"
    assert failed["errors"][0]["count"] == 1
    assert kind_progress({"kindIdentifier": "x-0", "metrics": "junk"})["fetched"] == 0
    # counts that are not counts stay storable (a 64-bit column, JSON's exact integers)
    for junk, count in ((1e20, 2**53), (float("inf"), 0), (float("nan"), 0), (-5, 0)):
        assert kind_progress(event("item-1", "syncing", extracted=junk))["fetched"] == count


def test_metrics_fold_into_the_run_and_its_end_closes_it() -> None:
    run = start_run(
        "ocean_1", "my-testint", running_state(), now=NOW, trigger="api", trigger_request="rr_1"
    )
    assert (run["status"], run["startedAt"]) == ("running", "2026-11-27T04:31:13.569069Z")
    for update in (
        event("team-0", "pending"),
        event("item-1", "pending"),
        event("team-0", "syncing"),
        event("team-0", "completed", extracted=2, transformed=2, loaded=2),
        event("item-1", "completed", extracted=30, transformed=30, loaded=5, skipped=25),
        reconciliation("syncing", 0),
        reconciliation("completed", 4),
        {**event("__runtime__", "completed"), "kind": "__runtime__"},
    ):
        run = apply_kind_metrics(run, update)
    assert [(k["kind"], k["status"], k["fetched"]) for k in run["kinds"]] == [
        ("team", "completed", 2),
        ("item", "completed", 30),
    ]
    assert run["totals"]["upserted"] == 7
    assert run["totals"]["unchanged"] == 25
    assert run["totals"]["deleted"] == 4
    assert run["deletePhase"]["status"] == "done"
    assert (run["oceanEventId"], run["oceanVersion"]) == ("ev-1", "0.56.2")

    state = {"status": "completed", "lastResyncEnd": "2026-11-27T04:31:15.069069+00:00"}
    ended = end_run(run, "completed", state, now=NOW + 9_000_000)
    assert (ended["status"], ended["durationSeconds"]) == ("completed", 1.5)
    assert ended["endedAt"] == "2026-11-27T04:31:15.069069Z"  # Ocean's clock, not the catalog's


def test_a_failed_kind_fails_the_run_and_explains_the_skipped_delete_phase() -> None:
    run = start_run("ocean_1", "x", running_state(), now=NOW, trigger="start", trigger_request=None)
    run = apply_kind_metrics(run, event("item-0", "completed", extracted=1))
    run = apply_kind_metrics(run, event("deployment-1", "failed", extracted=1))
    run = apply_kind_metrics(run, reconciliation("failed", 0))
    assert run["deletePhase"] == {**run["deletePhase"], "status": "skipped"}
    assert "deployment" in run["deletePhase"]["reason"]
    ended = end_run(run, "failed", {"status": "failed"}, now=NOW + 1)
    assert ended["status"] == "failed"
    assert "deployment" in ended["error"]


def test_an_aborted_run_names_the_run_that_replaced_it() -> None:
    run = start_run("ocean_1", "x", running_state(), now=NOW, trigger="start", trigger_request=None)
    run = apply_kind_metrics(run, event("item-0", "syncing"))
    aborted = end_run(run, "aborted", {}, now=NOW + 2_000_000)
    assert aborted["kinds"][0]["status"] == "aborted"
    assert aborted["deletePhase"]["status"] == "skipped"
    linked = mark_superseded(aborted, NOW + 1_000_000, "ocean_2")  # request while it ran
    assert linked is not None
    assert linked["abortedBy"] == "ocean_2"
    assert "ocean_2" in linked["deletePhase"]["reason"]
    assert mark_superseded(aborted, NOW - 1, "ocean_2") is None  # request before it started

    replaced = replace_run(run, "ocean_2", now=NOW + 1)  # Ocean's end report comes later
    assert (replaced["status"], replaced["abortedBy"]) == ("aborted", "ocean_2")
    late = settle_run(replaced, "aborted", {"status": "aborted"}, now=NOW + 2)
    assert "awaitingOceanEnd" not in late
    assert late["abortedBy"] == "ocean_2"
    finished = settle_run(replaced, "completed", {"status": "completed"}, now=NOW + 2)
    assert (finished["status"], finished["abortedBy"]) == ("completed", None)


def _at(moment: int) -> str:
    """``moment`` (µs) as Ocean sends times."""
    return to_datetime(moment).isoformat()


def scheduled_state(anchor: int, tick: int, *, interval: float = 60) -> dict[str, Any]:
    """The resync state Ocean reports with ``OCEAN__SCHEDULED_RESYNC_INTERVAL=interval``
    (minutes) on tick ``tick`` of a process whose schedule is anchored at ``anchor``."""
    step = int(interval * 60_000_000)
    return {
        **running_state(_at(anchor + tick * step + 2_500_000)),
        "nextResync": _at(anchor + (tick + 1) * step),
        "intervalInMinuets": interval,
    }


def test_the_trigger_is_the_pending_request_unless_the_integration_made_it() -> None:
    state, previous = running_state(), {}
    request = ResyncRequest("rr_1", "x", "ui", "someone", NOW)
    assert run_trigger(request, "ocean-client", previous=previous, state=state) == ("ui", "rr_1")
    own = ResyncRequest("rr_2", "x", "api", "ocean-client", NOW)
    assert run_trigger(own, "ocean-client", previous=previous, state=state) == ("start", None)
    assert run_trigger(None, "ocean-client", previous=previous, state=state) == ("start", None)


def test_a_run_one_interval_after_the_last_named_one_is_on_schedule() -> None:
    first = scheduled_state(NOW, 0)
    assert not on_schedule({}, first)  # the process's first run
    assert on_schedule(first, scheduled_state(NOW, 1))
    assert on_schedule(scheduled_state(NOW, 4), scheduled_state(NOW, 5))
    assert on_schedule(scheduled_state(NOW, 0, interval=0.5), scheduled_state(NOW, 1, interval=0.5))
    # a new process, started between two ticks of the old one: its schedule starts anew
    assert not on_schedule(scheduled_state(NOW, 4), scheduled_state(NOW + 1_234_567_890, 0))
    assert not on_schedule(first, {**scheduled_state(NOW, 1), "intervalInMinuets": None})
    assert not on_schedule(first, {**scheduled_state(NOW, 1), "nextResync": None})
    assert not on_schedule({"nextResync": "soon"}, scheduled_state(NOW, 1))
    assert on_schedule(first, scheduled_state(NOW, 3))  # the reports of two ticks were lost
    # the run before ended just past the occurrence, so it named the one the tick names too
    late_end = {"nextResync": scheduled_state(NOW, 1)["nextResync"]}
    assert on_schedule(late_end, scheduled_state(NOW, 1))
    mid_interval = {**scheduled_state(NOW, 1), "lastResyncStart": _at(NOW + 80 * 60_000_000)}
    assert not on_schedule(late_end, mid_interval)  # a trigger the catalog did not see
    quiet = {k: v for k, v in scheduled_state(NOW, 1).items() if k != "intervalInMinuets"}
    assert on_schedule(first, quiet)  # a key left out keeps its stored value
    request = ResyncRequest("rr_1", "x", "ui", "someone", NOW)  # a request says why, still
    assert run_trigger(request, "c", previous=first, state=scheduled_state(NOW, 1)) == (
        "ui",
        "rr_1",
    )
    own = ResyncRequest("rr_2", "x", "api", "c", NOW)  # recorded by Ocean itself
    assert run_trigger(own, "c", previous=first, state=scheduled_state(NOW, 1)) == (
        "schedule",
        None,
    )


# --- through the API, as Ocean calls it -----------------------------------------------------


async def run_history(admin: httpx.AsyncClient, identifier: str) -> list[dict[str, Any]]:
    response = await admin.get(f"/v1/integration/{identifier}/runs")
    runs: list[dict[str, Any]] = response.json()["runs"]
    return runs


async def test_ocean_reports_become_run_history(
    admin: httpx.AsyncClient, catalog: RunningCatalog
) -> None:
    await create_integration(admin, "oc")
    async with client_as(catalog, Role.INTEGRATION, "oc") as ocean:
        record = (await ocean.get("/v1/integration/oc")).json()["integration"]
        metrics = record["metricAttributes"]["ingestUrl"]
        ui = await admin.post("/v1/integration/oc/resync", json={"source": "ui"})
        request_id = ui.json()["request"]["id"]

        started = iso()
        patched = await ocean.patch("/v1/integration/oc/resync-state", json=running_state(started))
        assert patched.json()["integration"]["resyncState"]["status"] == "running"
        pending = [event("item-0", "pending")]
        await ocean.post(f"{metrics}/syncMetrics", json={"syncKindsMetrics": pending})
        kind_url = f"{metrics}/syncMetrics/resync/ev-1/kind/item-0"
        done = event("item-0", "completed", extracted=3, transformed=3, loaded=3)
        await ocean.put(kind_url, json={"syncKindMetrics": done})
        reconciled = reconciliation("completed", 1)
        await ocean.put(
            f"{metrics}/syncMetrics/resync/ev-1/kind/__reconciliation__",
            json={"syncKindMetrics": reconciled},
        )
        assert (
            await ocean.post(f"{metrics}/heartbeat", json={"eventId": "ev-1"})
        ).status_code == 200
        [run] = await run_history(admin, "oc")
        assert (run["status"], run["trigger"], run["triggerRequest"]) == (
            "running",
            "ui",
            request_id,
        )
        assert from_iso(run["startedAt"]) == from_iso(started)

        ended = iso()
        await ocean.patch(
            "/v1/integration/oc/resync-state", json={"status": "completed", "lastResyncEnd": ended}
        )
        await ocean.patch(  # Ocean's shutdown check may report twice; a no-op then
            "/v1/integration/oc/resync-state", json={"status": "aborted", "lastResyncEnd": ended}
        )
    [run] = await run_history(admin, "oc")
    assert run["status"] == "completed"
    assert from_iso(run["endedAt"]) == from_iso(ended)
    assert run["kinds"][0] | {"errors": []} == kind_progress(done)
    assert (run["deletePhase"]["status"], run["totals"]["deleted"]) == ("done", 1)
    # Ocean does not say how many it owned or found stale: unknown, not 0
    assert (run["deletePhase"]["owned"], run["deletePhase"]["stale"]) == (None, None)
    token = admin.headers["Authorization"].removeprefix("Bearer ")
    page = await admin.get("/ui/data-sources/oc", headers={"Cookie": f"shoal_token={token}"})
    assert page.status_code == 200 and run["id"] in page.text
    assert "stale of" not in page.text  # not "0 stale of 0 owned"
    summary = (await admin.get("/v1/integration/oc")).json()["integration"]["runSummary"]
    assert summary["lastCompletedRun"] == run["id"]


async def test_a_newer_run_replaces_a_running_one_and_takes_its_late_end_report(
    admin: httpx.AsyncClient,
) -> None:
    """WEBHOOK and KAFKA listeners start the next resync before the older one reports its end."""
    await create_integration(admin, "overlap")
    state_url = "/v1/integration/overlap/resync-state"
    await admin.patch(state_url, json=running_state(iso()))
    await admin.patch(state_url, json=running_state(iso(seconds=1)))
    await admin.patch(state_url, json={"status": "aborted", "lastResyncEnd": iso(seconds=1)})
    newer, older = await run_history(admin, "overlap")
    assert (newer["status"], older["status"]) == ("running", "aborted")
    assert older["abortedBy"] == newer["id"]
    await admin.patch(state_url, json={"status": "completed", "lastResyncEnd": iso(seconds=2)})
    newer, older = await run_history(admin, "overlap")
    assert (newer["status"], older["status"]) == ("completed", "aborted")


async def test_a_restarted_ocean_s_end_report_is_its_own_run_s(
    admin: httpx.AsyncClient,
) -> None:
    """An Ocean process killed mid-resync never reports its end; the next process's run
    replaces the dead one, and what that process reports is about its own run."""
    await create_integration(admin, "restarted")
    state_url = "/v1/integration/restarted/resync-state"
    await admin.patch(state_url, json=running_state(iso()))  # then killed
    await admin.patch(state_url, json=running_state(iso(seconds=1)))  # a new process
    await admin.patch(state_url, json={"status": "completed", "lastResyncEnd": iso(seconds=2)})
    newer, older = await run_history(admin, "restarted")
    assert (newer["status"], older["status"]) == ("completed", "aborted")
    assert older["abortedBy"] == newer["id"]


async def test_ocean_s_scheduled_runs_are_told_from_its_start_runs(
    admin: httpx.AsyncClient,
) -> None:
    await create_integration(admin, "sched")
    state_url = "/v1/integration/sched/resync-state"
    anchor = from_iso(iso(hours=-3))
    for tick in range(2):
        running = scheduled_state(anchor, tick)
        await admin.patch(state_url, json=running)
        ended = {key: running[key] for key in ("nextResync", "intervalInMinuets")}
        await admin.patch(state_url, json={"status": "completed", **ended})
    restarted = anchor + 2 * 3_600_000_000 + 123_456_789  # a new process, between two ticks
    await admin.patch(state_url, json=scheduled_state(restarted, 0))
    runs = await run_history(admin, "sched")
    assert [run["trigger"] for run in runs] == ["start", "schedule", "start"]


async def test_heartbeats_keep_an_ocean_run_alive_and_silence_fails_it(
    admin: httpx.AsyncClient,
) -> None:
    """The catalog fixture sets run_heartbeat_timeout=1.0."""
    record = await create_integration(admin, "beat")
    metrics = record["metricAttributes"]["ingestUrl"]
    await admin.patch("/v1/integration/beat/resync-state", json=running_state(iso()))
    await admin.post(
        f"{metrics}/syncMetrics", json={"syncKindsMetrics": [event("item-0", "pending")]}
    )
    deadline = time.monotonic() + 1.8
    while time.monotonic() < deadline:
        await admin.post(f"{metrics}/heartbeat", json={"eventId": "ev-1"})
        await asyncio.sleep(0.2)
    [run] = await run_history(admin, "beat")
    assert run["status"] == "running"
    deadline = time.monotonic() + 5
    while run["status"] == "running" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        [run] = await run_history(admin, "beat")
    assert run["status"] == "failed"
    assert "heartbeat" in run["failureReason"]
    assert run["deletePhase"]["status"] == "skipped"
    # the process was only slow: its end report is the truth
    await admin.patch("/v1/integration/beat/resync-state", json={"status": "completed"})
    [run] = await run_history(admin, "beat")
    assert run["status"] == "completed"
    assert "failureReason" not in run
    assert "heartbeats stopped" in run["warnings"][0]


async def test_an_integration_that_reports_its_own_runs_gets_no_synthesised_ones(
    admin: httpx.AsyncClient,
) -> None:
    await create_integration(admin, "own")
    await admin.patch("/v1/integration/own/resync-state", json=running_state(iso()))
    assert len(await run_history(admin, "own")) == 1  # could be Ocean, until it reports a run
    started = iso()
    await admin.put(
        "/v1/integration/own/runs/run_1", json={"status": "running", "startedAt": started}
    )
    assert [run["id"] for run in await run_history(admin, "own")] == ["run_1"]
    await admin.patch("/v1/integration/own/resync-state", json={"status": "completed"})
    await admin.patch("/v1/integration/own/resync-state", json=running_state(iso()))
    assert [run["id"] for run in await run_history(admin, "own")] == ["run_1"]
