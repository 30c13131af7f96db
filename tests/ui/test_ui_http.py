"""The UI's routes over plain HTTP on both engines: sessions, CSRF, roles, forms and pages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from shoal.catalog.api import integrations as integrations_api
from shoal.catalog.auth import Role
from shoal.catalog.server import RunningCatalog
from tests.conftest import admin_client, admin_credentials
from tests.ui.helpers import (
    assert_forbidden,
    browser_user,
    csrf_of,
    new_credential,
    showing,
    sign_in,
)

CONFIG_YAML = """\
deleteDependentEntities: true
resources:
  - kind: thing
    selector:
      query: "true"
    port:
      entity:
        mappings:
          identifier: .id
          title: .name
          blueprint: '"uiThing"'
"""


@pytest.fixture
async def ui_admin(catalog: RunningCatalog) -> AsyncIterator[httpx.AsyncClient]:
    """The first-start admin, signed in to the UI with a session cookie."""
    creds = admin_credentials(catalog)
    async with httpx.AsyncClient(base_url=catalog.url, timeout=30) as client:
        response = await sign_in(client, creds["clientId"], creds["clientSecret"])
        assert response.status_code == 303, response.text
        yield client


async def create_integration(admin: httpx.AsyncClient, identifier: str, **extra: Any) -> Any:
    body = {"installationId": identifier, "installationAppType": "testint", **extra}
    response = await admin.post("/v1/integration", json=body)
    assert response.status_code == 201, response.text
    return response.json()["integration"]


async def test_root_redirects_and_pages_need_a_session(catalog: RunningCatalog) -> None:
    async with httpx.AsyncClient(base_url=catalog.url) as client:
        root = await client.get("/")
        assert root.status_code == 303
        assert root.headers["location"] == "/ui/data-sources"
        for path in ("/ui/data-sources", "/ui/catalog", "/ui/data-sources/x?notice=resync"):
            page = await client.get(path)
            assert page.status_code == 303, path
            assert page.headers["location"].startswith("/ui/login?next=%2Fui%2F")
        forged = await client.post("/ui/data-sources/x/resync", data={"csrf_token": "x"})
        assert_forbidden(forged)


async def test_sign_in_sets_a_strict_cookie_the_api_accepts_and_sign_out_clears_it(
    catalog: RunningCatalog,
) -> None:
    creds = admin_credentials(catalog)
    async with httpx.AsyncClient(base_url=catalog.url) as client:
        form = await client.get("/ui/login")
        assert form.status_code == 200
        assert form.headers["content-security-policy"].startswith("default-src 'self'")
        login = {"clientId": creds["clientId"], "clientSecret": creds["clientSecret"]}
        assert_forbidden(await client.post("/ui/login", data=login))  # no CSRF token
        assert_forbidden(await client.post("/ui/login", data={**login, "csrf_token": "0" * 64}))

        token = csrf_of(form.text)
        wrong = await client.post(
            "/ui/login", data={**login, "clientSecret": "nope", "csrf_token": token}
        )
        assert wrong.status_code == 401
        assert "invalid clientId or clientSecret" in wrong.text

        signed_in = await client.post(
            "/ui/login", data={**login, "csrf_token": token, "next": "/ui/catalog"}
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/ui/catalog"
        cookie = next(
            c for c in signed_in.headers.get_list("set-cookie") if c.startswith("shoal_token=")
        )
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/" in cookie

        page = await client.get("/ui/data-sources")
        assert page.status_code == 200
        assert 'id="user-role">admin<' in page.text
        assert (await client.get("/v1/integration")).status_code == 200  # the cookie is a token
        # ... to read only: another page on this site could make the browser send it with a
        # form or a plain-text request; writes go through the UI's CSRF-checked forms
        forged = await client.post(
            "/v1/blueprints",
            content=b'{"identifier": "forged"}',
            headers={"Content-Type": "text/plain"},
        )
        assert forged.status_code == 401
        assert forged.json()["error"] == "unauthorized"
        assert "may only read" in forged.json()["message"]
        assert (await client.get("/v1/blueprints/forged")).status_code == 404

        assert_forbidden(await client.post("/ui/logout", data={}))
        out = await client.post("/ui/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303
        assert out.headers["location"] == "/ui/login"
        assert (await client.get("/ui/data-sources")).status_code == 303


async def test_signing_out_ends_the_session_for_a_copy_of_its_cookie_too(
    catalog: RunningCatalog,
) -> None:
    creds = admin_credentials(catalog)
    async with (
        httpx.AsyncClient(base_url=catalog.url) as browser,
        httpx.AsyncClient(base_url=catalog.url) as other_browser,
        httpx.AsyncClient(base_url=catalog.url) as api,
    ):
        assert (await sign_in(browser, creds["clientId"], creds["clientSecret"])).status_code == 303
        assert (
            await sign_in(other_browser, creds["clientId"], creds["clientSecret"])
        ).status_code == 303
        token = browser.cookies["shoal_token"]
        api_token = (
            await api.post(
                "/v1/auth/access_token",
                json={"clientId": creds["clientId"], "clientSecret": creds["clientSecret"]},
            )
        ).json()["accessToken"]
        page = await browser.get("/ui/data-sources")
        assert page.status_code == 200

        out = await browser.post("/ui/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303

        # the signed-out session's token, kept by whoever copied the cookie, no longer works
        copied = {"Cookie": f"shoal_token={token}"}
        again = await api.get("/ui/data-sources", headers=copied)
        assert again.status_code == 303
        assert again.headers["location"].startswith("/ui/login")
        for headers in (copied, {"Authorization": f"Bearer {token}"}):
            refused = await api.get("/v1/blueprints", headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.json() == {
                "ok": False,
                "error": "unauthorized",
                "message": "this session has been signed out of: sign in again",
            }
        assert (await api.get("/ui/login", headers=copied)).status_code == 200  # the form again

        # other sessions of the same credential and API tokens are not affected
        assert (await other_browser.get("/ui/data-sources")).status_code == 200
        headers = {"Authorization": f"Bearer {api_token}"}
        assert (await api.get("/v1/blueprints", headers=headers)).status_code == 200
        # and signing in again starts a new session
        assert (await sign_in(browser, creds["clientId"], creds["clientSecret"])).status_code == 303
        assert (await browser.get("/ui/data-sources")).status_code == 200


async def test_an_event_stream_of_a_signed_out_session_ends(
    catalog: RunningCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integrations_api, "KEEPALIVE_SECONDS", 0.2)
    async with await admin_client(catalog) as admin:
        await create_integration(admin, "streamed")
    creds = admin_credentials(catalog)
    async with httpx.AsyncClient(base_url=catalog.url, timeout=10) as browser:
        assert (await sign_in(browser, creds["clientId"], creds["clientSecret"])).status_code == 303
        page = await browser.get("/ui/data-sources")
        async with browser.stream("GET", "/v1/integration/streamed/events") as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert await anext(lines) == "event: ready"
            async with asyncio.timeout(2):  # alive: keepalives go on
                while await anext(lines) != ": keepalive":
                    pass
            out = await browser.post("/ui/logout", data={"csrf_token": csrf_of(page.text)})
            assert out.status_code == 303
            async with asyncio.timeout(5):  # and it ends once signed out of
                async for _ in lines:
                    pass


async def test_a_form_over_the_body_limit_is_refused_before_it_is_read(
    catalog: RunningCatalog,
) -> None:
    # anyone may post the sign-in form: its size is checked before anything else
    limit = catalog.settings.max_body_bytes
    async with httpx.AsyncClient(base_url=catalog.url) as client:
        huge = await client.post("/ui/login", data={"clientId": "x" * (limit + 1)})
        assert huge.status_code == 413
        many = await client.post("/ui/login", data={f"f{n}": "x" for n in range(200)})
        assert many.status_code == 400, many.text


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/v1/x"])
async def test_sign_in_only_returns_to_ui_pages(catalog: RunningCatalog, target: str) -> None:
    creds = admin_credentials(catalog)
    async with httpx.AsyncClient(base_url=catalog.url) as client:
        form = await client.get("/ui/login")
        data = {"csrf_token": csrf_of(form.text), "next": target, **creds}
        response = await client.post("/ui/login", data=data)
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/data-sources"


async def test_integration_credentials_cannot_sign_in(
    catalog: RunningCatalog, admin: httpx.AsyncClient
) -> None:
    await create_integration(admin, "machine")
    from shoal.catalog.store import open_store

    store = await open_store(catalog.settings.resolved_database_url, base_url=catalog.url)
    try:
        client_id, secret = await store.credentials.create(Role.INTEGRATION, integration="machine")
    finally:
        await store.close()
    async with httpx.AsyncClient(base_url=catalog.url) as client:
        response = await sign_in(client, client_id, secret)
        assert response.status_code == 403
        assert "integration credentials cannot use the web UI" in response.text
        assert "shoal_token" not in client.cookies


async def test_data_sources_list_and_server_side_search(
    admin: httpx.AsyncClient, ui_admin: httpx.AsyncClient
) -> None:
    await create_integration(admin, "github-prod", installationAppType="github")
    await create_integration(admin, "pagerduty", installationAppType="pagerduty")
    state = {"status": "failed", "lastResyncStart": "2026-01-02T03:04:05Z"}
    await admin.patch("/v1/integration/pagerduty/resync-state", json=state)
    page = await ui_admin.get("/ui/data-sources")
    assert "github-prod" in page.text
    assert "pagerduty" in page.text
    assert "status-failed" in page.text
    assert "2026-01-02 03:04:05 UTC" in page.text
    found = await ui_admin.get("/ui/data-sources", params={"q": "GitHub"})
    assert "github-prod" in found.text
    assert 'href="/ui/data-sources/pagerduty"' not in found.text


class EventStream:
    """The integration's server-sent events, read as a client (the integration) would."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self, name: str, within: float = 5.0) -> Any:
        async with asyncio.timeout(within):
            event: dict[str, str] = {}
            async for line in self._lines:
                if line.startswith(":"):
                    continue
                if line:
                    key, _, value = line.partition(": ")
                    event[key] = value
                    continue
                if event.get("event") == name:
                    return orjson.loads(event["data"])
                event = {}
        message = "the event stream ended"
        raise AssertionError(message)


async def test_resync_button_is_for_members_and_admins_and_needs_csrf(
    catalog: RunningCatalog, admin: httpx.AsyncClient
) -> None:
    await create_integration(admin, "target")
    url = "/ui/data-sources/target/resync"
    async with browser_user(catalog, Role.VIEWER) as (viewer, _):
        page = await viewer.get("/ui/data-sources/target")
        assert page.status_code == 200
        assert 'id="resync-button"' not in page.text
        assert 'id="config-editor"' not in page.text
        assert "CSRF" in assert_forbidden(await viewer.post(url, data={}))["message"]
        with_token = await viewer.post(url, data={"csrf_token": csrf_of(page.text)})
        assert "viewer" in assert_forbidden(with_token)["message"]

    async with browser_user(catalog, Role.MEMBER) as (member, member_id):
        page = await member.get("/ui/data-sources/target")
        assert 'id="resync-button"' in page.text
        assert 'id="config-editor"' not in page.text
        token = csrf_of(page.text)
        tampered = token[:-1] + ("1" if token.endswith("0") else "0")
        assert_forbidden(await member.post(url, data={"csrf_token": tampered}))
        async with admin.stream("GET", "/v1/integration/target/events") as response:
            events = EventStream(response)
            await events.next("ready")
            pressed = await member.post(
                url, data={"csrf_token": token}, headers={"Accept": "application/json"}
            )
            assert pressed.status_code == 201, pressed.text
            delivered = await events.next("resync-request")
        assert delivered["source"] == "ui"
        assert delivered["actor"] == member_id
        assert delivered == pressed.json()["request"]
        plain = await member.post(url, data={"csrf_token": token})
        assert plain.status_code == 303
        assert plain.headers["location"] == "/ui/data-sources/target?notice=resync"
        assert "Resync requested" in (await member.get(plain.headers["location"])).text
    pending = (await admin.get("/v1/integration/target/resync-request")).json()["request"]
    assert (pending["source"], pending["actor"]) == ("ui", member_id)


async def test_mapping_config_is_validated_admin_only_and_saving_requests_a_resync(
    catalog: RunningCatalog, admin: httpx.AsyncClient, ui_admin: httpx.AsyncClient
) -> None:
    original: dict[str, Any] = {"resources": []}
    await create_integration(admin, "mapped", config=original)
    url = "/ui/data-sources/mapped/config"
    async with browser_user(catalog, Role.MEMBER) as (member, _):
        page = await member.get("/ui/data-sources/mapped")
        refused = await member.post(url, data={"csrf_token": csrf_of(page.text), "config": "{}"})
        assert "member" in assert_forbidden(refused)["message"]

    page = await ui_admin.get("/ui/data-sources/mapped")
    assert 'id="config-editor"' in page.text
    token = csrf_of(page.text)
    assert_forbidden(await ui_admin.post(url, data={"config": CONFIG_YAML}))
    bad_configs = {
        "resources: [\n  - kind: x\n  bad": "invalid YAML at line",
        "resources:\n  - kind: thing\n": "invalid mapping config: resources[0].port",
        "- just\n- a list\n": "invalid mapping config: expected a JSON object",
        "": "the mapping config is empty",
    }
    for text, message in bad_configs.items():
        response = await ui_admin.post(url, data={"csrf_token": token, "config": text})
        assert response.status_code == 422, text
        error = response.text.split('id="config-error" role="alert">')[1].split("</div>")[0]
        assert message in error
        assert "\n" not in error
        stored = (await admin.get("/v1/integration/mapped")).json()["integration"]["config"]
        assert stored == original

    saved = await ui_admin.post(url, data={"csrf_token": token, "config": CONFIG_YAML})
    assert saved.status_code == 303
    assert saved.headers["location"] == "/ui/data-sources/mapped?notice=config"
    record = (await admin.get("/v1/integration/mapped")).json()["integration"]
    assert record["config"]["resources"][0]["port"]["entity"]["mappings"]["title"] == ".name"
    assert record["config"]["deleteDependentEntities"] is True
    pending = (await admin.get("/v1/integration/mapped/resync-request")).json()["request"]
    assert pending["source"] == "config"
    assert pending["actor"] == admin_credentials(catalog)["clientId"]
    shown = await ui_admin.get(saved.headers["location"])
    assert "Mapping config saved" in shown.text
    assert "blueprint: &#39;&#34;uiThing&#34;&#39;" in shown.text  # read-only YAML, escaped


async def test_run_history_shows_aborts_delete_reasons_and_starvation(
    admin: httpx.AsyncClient, ui_admin: httpx.AsyncClient
) -> None:
    await create_integration(admin, "starved")
    ids = [f"run_2026010{i}T000000_00000{i}" for i in range(1, 6)]
    completed = {
        "status": "completed",
        "trigger": "start",
        "startedAt": "2026-01-01T00:00:00Z",
        "endedAt": "2026-01-01T00:00:09Z",
        "durationSeconds": 9.0,
        "kinds": [{"kind": "thing", "status": "completed", "fetched": 7, "upserted": 7}],
        "deletePhase": {
            "status": "blocked",
            "reason": "would delete 95 % > threshold",
            "owned": 20,
            "stale": 19,
        },
    }
    await admin.put(f"/v1/integration/starved/runs/{ids[0]}", json=completed)
    for index in range(1, 5):
        aborted = {
            "status": "aborted",
            "trigger": "api",
            "startedAt": f"2026-01-0{index + 1}T00:00:00Z",
            "abortedBy": ids[index + 1] if index < 4 else "run_later",
            "kinds": [
                {
                    "kind": "thing",
                    "status": "aborted",
                    "fetched": 3,
                    "failed": 1,
                    "errors": [{"message": "<b>boom</b>", "count": 1, "examples": ["x"]}],
                }
            ],
            "deletePhase": {"status": "skipped", "reason": f"the run was aborted by {ids[index]}"},
        }
        await admin.put(f"/v1/integration/starved/runs/{ids[index]}", json=aborted)
    page = await ui_admin.get("/ui/data-sources/starved")
    assert page.status_code == 200
    assert "4 runs in a row aborted; no complete resync since 2026-01-01 00:00:09 UTC" in page.text
    assert "would delete 95 % &gt; threshold" in page.text
    assert "19 stale of 20 owned" in page.text  # a Shoal run says (an Ocean run cannot)
    assert f'aborted by <a href="#run-{ids[2]}"' in page.text
    assert f'aborted <a href="#run-{ids[1]}"' in page.text  # the run that replaced it
    assert "&lt;b&gt;boom&lt;/b&gt;" in page.text
    assert "<b>boom</b>" not in page.text
    fragment = await ui_admin.get("/ui/data-sources/starved/history")
    assert fragment.text.lstrip().startswith('<div class="alert warn" id="starvation-warning"')
    assert "<html" not in fragment.text


async def test_ocean_integrations_show_their_state_and_kind_metrics(
    admin: httpx.AsyncClient, ui_admin: httpx.AsyncClient
) -> None:
    record = await create_integration(admin, "ocean")
    await admin.patch("/v1/integration/ocean/resync-state", json={"status": "running"})
    metrics_url = record["metricAttributes"]["ingestUrl"]
    event = {
        "eventId": "ev-1",
        "kindIdentifier": "repository-0",
        "syncState": "syncing",
        "metrics": {"phase": {"extract": {"object_count_type": {"raw_extracted": {"count": 42}}}}},
    }
    await admin.post(f"{metrics_url}/syncMetrics", json={"syncKindsMetrics": [event]})
    page = await ui_admin.get("/ui/data-sources/ocean")
    assert 'id="integration-status">running<' in page.text
    assert "repository-0" in page.text
    assert "metrics.phase.extract.object_count_type.raw_extracted.count" in page.text
    [run] = (await admin.get("/v1/integration/ocean/runs")).json()["runs"]  # from its reports
    assert f'id="run-{run["id"]}"' in page.text
    assert "No resyncs reported yet." not in page.text


async def seed_catalog(admin: httpx.AsyncClient) -> None:
    team = {
        "identifier": "uiTeam",
        "title": "UI Team",
        "schema": {"properties": {"slack": {"type": "string", "title": "Slack"}}},
        "relations": {},
    }
    service = {
        "identifier": "uiService",
        "title": "UI Service",
        "schema": {"properties": {"tier": {"type": "number", "title": "Tier"}}},
        "relations": {"team": {"title": "Owning team", "target": "uiTeam", "many": False}},
    }
    for body in (team, service):
        assert (await admin.post("/v1/blueprints", json=body)).status_code == 201
    teams = [{"identifier": "team-a", "title": "<script>alert(1)</script>"}]
    services = [
        {
            "identifier": f"svc-{i:03d}",
            "title": f"Service {chr(ord('z') - i % 26)}{i:03d}",
            "properties": {"tier": i % 3},
            "relations": {"team": "team-a"},
        }
        for i in range(30)
    ]
    for blueprint, entities in (("uiTeam", teams), ("uiService", services)):
        response = await admin.post(
            f"/v1/blueprints/{blueprint}/entities/bulk", json={"entities": entities}
        )
        assert response.status_code in (200, 207), response.text


async def test_entity_pages_page_sort_search_and_link_both_ways(
    admin: httpx.AsyncClient, ui_admin: httpx.AsyncClient
) -> None:
    await seed_catalog(admin)
    catalog = await ui_admin.get("/ui/catalog")
    assert 'href="/ui/catalog/uiService"' in catalog.text

    first = await ui_admin.get("/ui/catalog/uiService", params={"size": 25})
    assert showing(1, 25, 30) in first.text
    assert 'id="next-page"' in first.text
    second = await ui_admin.get("/ui/catalog/uiService", params={"size": 25, "page": 2})
    assert showing(26, 30, 30) in second.text
    assert "svc-029" in second.text
    assert 'id="next-page"' not in second.text

    by_title = await ui_admin.get("/ui/catalog/uiService", params={"sort": "title", "dir": "desc"})
    rows = by_title.text.split('<tr data-href="/ui/catalog/uiService/')[1:]
    assert rows[0].startswith("svc-026")  # "Service z026" sorts last ascending
    assert rows[1].startswith("svc-000")

    found = await ui_admin.get("/ui/catalog/uiService", params={"q": "SVC-02"})
    assert showing(1, 10, 10) in found.text
    none = await ui_admin.get("/ui/catalog/uiService", params={"q": "%_nothing"})
    assert "No entity matches" in none.text

    entity = await ui_admin.get("/ui/catalog/uiService/svc-007")
    assert 'href="/ui/catalog/uiTeam/team-a"' in entity.text
    team = await ui_admin.get("/ui/catalog/uiTeam/team-a")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in team.text
    assert "<script>alert(1)" not in team.text
    assert 'href="/ui/catalog/uiService/svc-007"' in team.text  # incoming relation

    missing = await ui_admin.get("/ui/catalog/uiService/nope")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert (await ui_admin.get("/ui/catalog/noSuchBlueprint")).status_code == 404


async def test_static_files_and_unknown_names(catalog: RunningCatalog) -> None:
    async with httpx.AsyncClient(base_url=catalog.url) as client:
        css = await client.get("/ui/static/shoal.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        js = await client.get("/ui/static/integration.js")
        assert js.headers["content-type"].startswith("text/javascript")
        for name in ("nope.js", "..%2Fpresent.py", "__init__.py"):
            assert (await client.get(f"/ui/static/{name}")).status_code == 404


async def test_a_new_viewer_credential_sees_pages(catalog: RunningCatalog) -> None:
    client_id, secret = await new_credential(catalog, Role.VIEWER)
    async with httpx.AsyncClient(base_url=catalog.url) as client:
        assert (await sign_in(client, client_id, secret)).status_code == 303
        page = await client.get("/ui/catalog")
        assert page.status_code == 200
        assert 'id="user-role">viewer<' in page.text
