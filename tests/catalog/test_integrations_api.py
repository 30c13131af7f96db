"""Integration routes: Port's record, resync requests and state, SSE, runs and ingest URLs."""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import quote_plus

import httpx
import pytest

from shoal.catalog.server import RunningCatalog, free_port
from shoal.catalog.store import integrations as integrations_store, open_store
from tests.catalog.helpers import (
    OCEAN_BODY,
    EventReader,
    assert_error,
    create_integration,
    iso,
    parse_iso,
)


async def test_create_and_get_integration(
    admin: httpx.AsyncClient, catalog: RunningCatalog
) -> None:
    response = await admin.get("/v1/integration/nope?oceanCoreVersion=0.56.2&isPolling=false")
    body = assert_error(response, 404, "not_found")
    assert body["message"] == "Integration with identifier nope was not found"
    assert_error(await admin.patch("/v1/integration/nope", json={}), 404, "not_found")
    assert_error(await admin.get("/v1/integration/nope/resync-request"), 404, "not_found")

    provision = await admin.get("/v1/integration/provision-enabled")
    assert provision.status_code == 200
    assert provision.json() == {"ok": True, "integrations": []}

    created = await create_integration(admin, "my-testint")
    assert created["identifier"] == created["installationId"] == "my-testint"
    assert created["installationType"] == "OnPrem"
    assert created["config"] == OCEAN_BODY["config"]
    assert created["createPortResourcesOrigin"] == "Default"
    assert created["arePortResourcesInitialized"] is False
    assert created["resyncState"]["status"] is None
    parse_iso(created["resyncState"]["updatedAt"])
    for key in ("logAttributes", "metricAttributes", "ingestAttributes"):
        assert created[key]["ingestUrl"].startswith(f"{catalog.url}/v1/ingest/my-testint/")
    assert parse_iso(created["createdAt"]) == parse_iso(created["updatedAt"])

    fetched = (await admin.get("/v1/integration/my-testint?oceanCoreVersion=0.56.2")).json()
    assert fetched["ok"] is True
    assert fetched["integration"]["config"] == OCEAN_BODY["config"]
    # the literal route still works once an integration exists
    assert (await admin.get("/v1/integration/provision-enabled")).json()["integrations"] == []

    request = (await admin.get("/v1/integration/my-testint/resync-request")).json()["request"]
    assert request["id"].startswith("rr_")
    assert request["source"] == "create"
    parse_iso(request["updatedAt"])

    duplicate = await admin.post(
        "/v1/integration", json={**OCEAN_BODY, "installationId": "my-testint"}
    )
    assert_error(duplicate, 409)
    assert_error(await admin.post("/v1/integration", json={"installationId": "bad id!"}), 422)


async def test_resync_requests_and_state(admin: httpx.AsyncClient) -> None:
    created = await create_integration(admin, "patched")
    first = (await admin.get("/v1/integration/patched/resync-request")).json()["request"]

    response = await admin.patch("/v1/integration/patched", json={})
    assert response.status_code == 200
    record = response.json()["integration"]
    assert parse_iso(record["updatedAt"]) > parse_iso(created["updatedAt"])
    assert record["config"] == created["config"]

    request = (await admin.get("/v1/integration/patched/resync-request")).json()["request"]
    assert request["id"] != first["id"]
    assert request["source"] == "api"
    assert request["actor"]
    assert parse_iso(request["updatedAt"]) > parse_iso(first["updatedAt"])

    changed = await admin.patch(
        "/v1/integration/patched", json={"version": "0.2.0", "arePortResourcesInitialized": True}
    )
    record = changed.json()["integration"]
    assert record["version"] == "0.2.0"
    assert record["arePortResourcesInitialized"] is True
    assert record["installationType"] == "OnPrem"  # server-owned keys are not patched

    await create_integration(admin, "policy")
    url = "/v1/integration/policy/resync-request"
    assert (await admin.get(url)).json()["request"] is not None  # fresh integration: pending

    await admin.patch(
        "/v1/integration/policy/resync-state", json={"status": "running", "lastResyncStart": iso()}
    )
    none = await admin.get(url)
    assert none.status_code == 200
    assert none.json() == {"ok": True, "request": None}

    await admin.patch("/v1/integration/policy", json={})
    assert (await admin.get(url)).json()["request"]["source"] == "api"

    # a resync that started before the request does not consume it
    await admin.patch(
        "/v1/integration/policy/resync-state",
        json={"status": "running", "lastResyncStart": iso(seconds=-60)},
    )
    assert (await admin.get(url)).json()["request"] is not None

    await create_integration(admin, "configured")
    await admin.patch("/v1/integration/configured/resync-state", json={"lastResyncStart": iso()})
    url = "/v1/integration/configured/resync-request"
    assert (await admin.get(url)).json()["request"] is None

    new_config = {"resources": [{"kind": "repo", "selector": {"query": "true"}}]}
    skipped = await admin.patch(
        "/v1/integration/configured/config",
        json={"config": new_config},
        headers={"x-skip-resync": "true"},
    )
    assert skipped.status_code == 200
    assert skipped.json()["integration"]["config"] == new_config  # replaced, not merged
    assert (await admin.get(url)).json()["request"] is None

    other = {"deleteDependentEntities": False, "resources": []}
    response = await admin.patch("/v1/integration/configured/config", json={"config": other})
    assert response.json()["integration"]["config"] == other
    request = (await admin.get(url)).json()["request"]
    assert request["source"] == "config"

    assert_error(await admin.patch("/v1/integration/configured/config", json={"config": []}), 422)

    await create_integration(admin, "state")
    start = iso()
    running = await admin.patch(
        "/v1/integration/state/resync-state",
        json={
            "status": "running",
            "lastResyncEnd": None,
            "lastResyncStart": start,
            "nextResync": None,
            "intervalInMinuets": None,
        },
    )
    assert running.status_code == 200
    record = running.json()["integration"]
    assert record["resyncState"]["status"] == "running"
    assert record["updatedAt"] == record["resyncState"]["updatedAt"]

    end = iso()
    completed = await admin.patch(
        "/v1/integration/state/resync-state",
        json={
            "status": "completed",
            "lastResyncEnd": end,
            "nextResync": None,
            "intervalInMinuets": None,
        },
    )
    state = completed.json()["integration"]["resyncState"]
    assert state["status"] == "completed"
    assert state["lastResyncStart"] == start  # missing keys keep their value
    assert state["lastResyncEnd"] == end
    assert parse_iso(state["updatedAt"]) > parse_iso(record["resyncState"]["updatedAt"])
    assert completed.json()["integration"]["updatedAt"] == state["updatedAt"]

    stored = (await admin.get("/v1/integration/state")).json()["integration"]
    assert stored["resyncState"] == state

    bad = await admin.patch("/v1/integration/state/resync-state", json={"status": "exploded"})
    assert_error(bad, 422, "invalid_request")
    bad_time = await admin.patch(
        "/v1/integration/state/resync-state", json={"lastResyncStart": "yesterday"}
    )
    assert_error(bad_time, 422)
    # both PATCHes Ocean sends on SIGINT are accepted
    for _ in range(2):
        aborted = await admin.patch(
            "/v1/integration/state/resync-state", json={"status": "aborted"}
        )
        assert aborted.json()["integration"]["resyncState"]["status"] == "aborted"


async def test_event_stream_pushes_triggers_and_replays(admin: httpx.AsyncClient) -> None:
    await create_integration(admin, "pushed")
    url = "/v1/integration/pushed/events"
    async with admin.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = EventReader(response)
        ready = await events.next()
        assert ready["event"] == "ready"
        started = time.monotonic()
        patched = await admin.patch("/v1/integration/pushed", json={})
        assert patched.status_code == 200
        event = await events.next(within=1.0)
        assert time.monotonic() - started < 1.0
        assert event["event"] == "resync-request"
        assert event["data"]["source"] == "api"
        assert event["id"] == event["data"]["id"]
        last_seen = event["id"]

    # recorded while nobody listens
    await admin.patch("/v1/integration/pushed", json={})
    await admin.post("/v1/integration/pushed/resync", json={"source": "cli"})

    async with admin.stream("GET", url, headers={"Last-Event-ID": last_seen}) as response:
        events = EventReader(response)
        assert (await events.next())["event"] == "ready"
        replayed = [await events.next(), await events.next()]
        assert [e["event"] for e in replayed] == ["resync-request", "resync-request"]
        assert [e["data"]["source"] for e in replayed] == ["api", "cli"]
        assert all(e["id"] > last_seen for e in replayed)

    assert_error(await admin.get("/v1/integration/missing/events"), 404, "not_found")


def _run(status: str, started: str, **extra: object) -> dict[str, object]:
    return {"status": status, "trigger": "api", "startedAt": started, "kinds": [], **extra}


async def test_runs_kind_examples_and_ingest(admin: httpx.AsyncClient) -> None:
    await create_integration(admin, "ran")
    base = "/v1/integration/ran/runs"
    t0 = iso(seconds=-30)
    put = await admin.put(f"{base}/r1", json=_run("running", t0))
    assert put.status_code == 200
    assert put.json()["run"]["id"] == "r1"
    assert (await admin.get(f"{base}/r1")).json()["run"]["status"] == "running"
    assert (await admin.post(f"{base}/r1/heartbeat")).json() == {"ok": True}

    ended = iso(seconds=-20)
    done = await admin.put(f"{base}/r1", json=_run("completed", t0, endedAt=ended))
    assert done.json()["run"]["status"] == "completed"
    back = await admin.put(f"{base}/r1", json=_run("running", t0))
    assert back.status_code == 200
    assert back.json()["run"]["status"] == "completed"  # a finished run never runs again
    assert (await admin.get(f"{base}/r1")).json()["run"]["status"] == "completed"

    await admin.put(f"{base}/r2", json=_run("aborted", iso(seconds=-10), abortedBy="r3"))
    await admin.put(f"{base}/r3", json=_run("aborted", iso(seconds=-5), abortedBy="r4"))
    await admin.put(f"{base}/r4", json=_run("running", iso()))
    runs = (await admin.get(base)).json()["runs"]
    assert [run["id"] for run in runs] == ["r4", "r3", "r2", "r1"]
    assert len((await admin.get(f"{base}?limit=2")).json()["runs"]) == 2

    summary = (await admin.get("/v1/integration/ran")).json()["integration"]["runSummary"]
    assert summary["consecutiveAborted"] == 2
    assert parse_iso(summary["lastCompletedAt"]) == parse_iso(ended)
    assert summary["lastCompletedRun"] == "r1"

    assert_error(await admin.get(f"{base}/nope"), 404, "not_found")
    assert_error(await admin.post(f"{base}/nope/heartbeat"), 404, "not_found")
    assert_error(await admin.put(f"{base}/r5", json={"status": "running"}), 422)
    assert_error(await admin.put(f"{base}/r5", json=_run("sleeping", iso())), 422)
    assert_error(
        await admin.put("/v1/integration/missing/runs/r1", json=_run("running", iso())), 404
    )

    record = await create_integration(admin, "ingested")
    kind = quote_plus("/api/v1/users x")
    examples = await admin.post(
        f"/v1/integration/{quote_plus('ingested')}/kinds/{kind}/examples",
        json={"examples": [{"a": 1}]},
    )
    assert examples.status_code == 200
    assert examples.json() == {"ok": True}
    stored = await admin.get(f"/v1/integration/ingested/kinds/{kind}/examples")
    assert stored.json() == {"ok": True, "examples": [{"a": 1}]}
    none_yet = await admin.get("/v1/integration/ingested/kinds/other/examples")
    assert none_yet.json() == {"ok": True, "examples": []}
    for method in ("GET", "POST"):
        unknown = await admin.request(
            method, "/v1/integration/nobody/kinds/k/examples", json={"examples": [{"a": 1}]}
        )
        assert_error(unknown, 404, "not_found")

    logs_url = record["logAttributes"]["ingestUrl"]
    metrics_url = record["metricAttributes"]["ingestUrl"]
    logs = await admin.post(
        logs_url,
        json={"logs": [{"message": "hi", "level": "INFO", "timestamp": iso(), "extra": {}}]},
    )
    assert logs.json() == {"ok": True}
    event = {
        "eventId": "ev-1",
        "kindIdentifier": "__runtime__",
        "kind": "__runtime__",
        "syncState": "syncing",
    }
    batch = await admin.post(f"{metrics_url}/syncMetrics", json={"syncKindsMetrics": [event]})
    assert batch.json() == {"ok": True}
    kind_event = {
        "eventId": "ev-1",
        "kindIdentifier": "/api/v1/users x-0",
        "syncState": "completed",
    }
    kind_url = f"{metrics_url}/syncMetrics/resync/{quote_plus('ev-1')}/kind/"
    put = await admin.put(
        kind_url + quote_plus("/api/v1/users x-0"), json={"syncKindMetrics": kind_event}
    )
    assert put.json() == {"ok": True}
    second = {"eventId": "ev-1", "kindIdentifier": "team-1", "syncState": "syncing"}
    url = f"{metrics_url}/syncMetrics/resync/ev-1/kind/team-1"
    assert (await admin.put(url, json={"syncKindMetrics": second})).json() == {"ok": True}
    # a batch is stored in one statement: a kind reported twice in it keeps the later report
    twice = [
        {"eventId": "ev-1", "kindIdentifier": "team-1", "syncState": "syncing", "n": 1},
        {"eventId": "ev-1", "kindIdentifier": "repo-2", "syncState": "syncing"},
        {"eventId": "ev-1", "kindIdentifier": "team-1", "syncState": "completed", "n": 2},
    ]
    batch = await admin.post(f"{metrics_url}/syncMetrics", json={"syncKindsMetrics": twice})
    assert batch.json() == {"ok": True}
    kinds = (await admin.get("/v1/integration/ingested/kind-metrics")).json()["kinds"]
    by_kind = {kind["kindIdentifier"]: kind for kind in kinds}
    assert by_kind["team-1"]["syncState"] == "completed" and by_kind["team-1"]["n"] == 2
    assert {"/api/v1/users x-0", "team-1", "repo-2"} <= set(by_kind)
    # malformed ones are refused, as bad input, not as a server error
    assert_error(await admin.post(logs_url, json={"logs": 5}), 422, "invalid_request")
    not_a_list = {"syncKindsMetrics": {"eventId": "ev-1"}}
    assert_error(await admin.post(f"{metrics_url}/syncMetrics", json=not_a_list), 422)
    long_id = f"{metrics_url}/syncMetrics/resync/{'e' * 201}/kind/team-1"
    assert_error(await admin.put(long_id, json={"syncKindMetrics": second}), 422)
    # a batch is stored whole or not at all, and only for an integration that exists
    half_bad = {
        "syncKindsMetrics": [
            {"eventId": "ev-1", "kindIdentifier": "half", "syncState": "syncing"},
            {"eventId": "e" * 201, "kindIdentifier": "team-1"},
        ]
    }
    assert_error(await admin.post(f"{metrics_url}/syncMetrics", json=half_bad), 422)
    nobody = metrics_url.replace("/ingested/", "/nobody/")
    assert nobody != metrics_url
    assert_error(
        await admin.post(f"{nobody}/syncMetrics", json={"syncKindsMetrics": [event]}), 404
    )
    heartbeat = await admin.post(f"{metrics_url}/heartbeat", json={"eventId": "ev-1"})
    assert heartbeat.json() == {"ok": True}
    lake = await admin.post(
        f"{record['ingestAttributes']['ingestUrl']}/write/integration-type/testint/integration/ingested",
        json={"items": []},
    )
    assert lake.json() == {"ok": True}

    kinds = (await admin.get("/v1/integration/ingested/kind-metrics")).json()["kinds"]
    by_key = {k["kindIdentifier"]: k for k in kinds}
    assert set(by_key) == {"__runtime__", "/api/v1/users x-0", "team-1", "repo-2"}  # not "half"
    assert by_key["/api/v1/users x-0"]["syncState"] == "completed"


async def test_silent_run_is_marked_failed(admin: httpx.AsyncClient) -> None:
    """The catalog fixture sets run_heartbeat_timeout=1.0."""
    await create_integration(admin, "stale")
    base = "/v1/integration/stale/runs"
    await admin.patch(
        "/v1/integration/stale/resync-state", json={"status": "running", "lastResyncStart": iso()}
    )
    await admin.put(f"{base}/silent", json=_run("running", iso()))
    await admin.put(f"{base}/alive", json=_run("running", iso(seconds=1)))
    deadline = time.monotonic() + 5
    silent: dict[str, object] = {}
    while time.monotonic() < deadline:
        await admin.post(f"{base}/alive/heartbeat")
        silent = (await admin.get(f"{base}/silent")).json()["run"]
        if silent["status"] != "running":
            break
        await asyncio.sleep(0.25)
    assert silent["status"] == "failed"
    assert "heartbeat" in str(silent["failureReason"])
    parse_iso(str(silent["endedAt"]))
    assert (await admin.get(f"{base}/alive")).json()["run"]["status"] == "running"
    record = (await admin.get("/v1/integration/stale")).json()["integration"]
    assert record["resyncState"]["status"] == "failed"
    assert record["updatedAt"] == record["resyncState"]["updatedAt"]
    # a late report from the silent run does not revive it
    late = await admin.put(f"{base}/silent", json=_run("running", iso()))
    assert late.json()["run"]["status"] == "failed"


async def test_webhook_failures_are_logged_without_the_urls_secrets(
    admin: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # nothing listens there: the delivery fails and is logged
    secret_url = f"http://hook:pa55word@127.0.0.1:{free_port()}/resync?token=t0ken"
    destination = {"changelogDestination": {"type": "WEBHOOK", "url": secret_url}}
    await create_integration(admin, "hooked", **destination)
    caplog.set_level(logging.WARNING, logger="shoal.webhooks")
    assert (await admin.patch("/v1/integration/hooked", json={})).status_code == 200
    async with asyncio.timeout(10):
        while "webhook http://127.0.0.1" not in caplog.text:
            await asyncio.sleep(0.05)
    assert "pa55word" not in caplog.text and "t0ken" not in caplog.text


async def test_request_ids_sort_in_commit_order_whatever_the_clocks(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Replicas' clocks differ (and a replica takes its time before waiting for the write
    # lock): a request committed later must still sort later, or a stream resuming from
    # Last-Event-ID skips it.
    store = await open_store(database_url, base_url="http://a")
    try:
        await store.integrations.create({"installationId": "clocks"}, actor=None)
        first = await store.integrations.request_resync("clocks", source="api", actor=None)
        behind = first.created_at - 5_000_000  # a replica whose clock is 5 s behind
        monkeypatch.setattr(integrations_store, "now_us", lambda: behind)
        second = await store.integrations.request_resync("clocks", source="ui", actor=None)
        assert second.id > first.id and second.created_at > first.created_at
        assert [r.id for r in await store.integrations.requests_after("clocks", first.id)] == [
            second.id
        ]
        _, latest = await store.integrations.latest_request("clocks")
        assert latest is not None and latest.id == second.id
    finally:
        await store.close()
