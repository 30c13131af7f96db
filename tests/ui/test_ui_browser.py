"""The web UI in a real browser (Debian's Chromium through Playwright) against a live catalog
and a live fake integration, both on loopback. SQLite only; one catalog and one browser for
the module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from shoal.catalog.auth import Role
from shoal.catalog.server import RunningCatalog, running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.integrations.fake import FakeSettings, create_integration
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings
from tests.conftest import admin_credentials, token_for
from tests.ui.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    iso_ago,
    new_credential,
    require_chromium,
    screenshot_paths,
    serving,
    showing,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

module_fixture = pytest_asyncio.fixture(scope="module", loop_scope="module")
PERSONS = 2000
LIVE = "fake-org"
SLOW = 30_000  # ms: a whole resync of the fake organisation, with room to spare


@module_fixture
async def catalog(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningCatalog]:
    root: Path = tmp_path_factory.mktemp("ui-browser")
    settings = CatalogSettings(
        port=0,
        data_dir=root / "data",
        database_url=f"sqlite:///{root / 'catalog.db'}",
        run_heartbeat_timeout=10.0,
    )
    async with running_catalog(settings) as running:
        yield running


@module_fixture
async def admin(catalog: RunningCatalog) -> AsyncIterator[httpx.AsyncClient]:
    creds = admin_credentials(catalog)
    token = await token_for(catalog.url, creds["clientId"], creds["clientSecret"])
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=catalog.url, headers=headers, timeout=30) as client:
        yield client


@module_fixture
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


@module_fixture
async def live_integration(
    catalog: RunningCatalog, admin: httpx.AsyncClient
) -> AsyncIterator[IntegrationRunner]:
    """The fake integration, listening for triggers, after its start resync completed."""
    creds = admin_credentials(catalog)
    settings = RunnerSettings(
        catalog_url=catalog.url,
        client_id=creds["clientId"],
        client_secret=creds["clientSecret"],
        identifier=LIVE,
        progress_interval=0.1,
    )
    fake = FakeSettings(persons=PERSONS, page_size=100, page_latency=0.05)
    async with serving(IntegrationRunner(create_integration(fake), settings)) as runner:
        await wait_for(lambda: _latest_run(admin, "completed"), 60)
        yield runner


async def _latest_run(admin: httpx.AsyncClient, status: str) -> Any:
    response = await admin.get(f"/v1/integration/{LIVE}/runs", params={"limit": 1})
    runs = response.json().get("runs", []) if response.status_code == 200 else []
    return runs[0] if runs and runs[0]["status"] == status else None


async def signed_in_page(
    browser: Browser, catalog: RunningCatalog, client_id: str, secret: str, start: str
) -> Page:
    """A fresh browser context that opens ``start``, lands on the login form and signs in."""
    context = await browser.new_context(
        base_url=catalog.url, viewport={"width": 1360, "height": 900}
    )
    page = await context.new_page()
    await page.goto(start)
    await expect(page).to_have_url(f"{catalog.url}/ui/login?next={start.replace('/', '%2F')}")
    await page.fill("#client-id", client_id)
    await page.fill("#client-secret", secret)
    await page.click("#sign-in")
    await expect(page).to_have_url(f"{catalog.url}{start}")
    return page


async def as_admin(browser: Browser, catalog: RunningCatalog, start: str) -> Page:
    creds = admin_credentials(catalog)
    return await signed_in_page(browser, catalog, creds["clientId"], creds["clientSecret"], start)


async def test_sign_in_and_find_an_integration_with_the_search_bar(
    browser: Browser, catalog: RunningCatalog, admin: httpx.AsyncClient
) -> None:
    states = {
        "github-production": ("github", "completed", 42),
        "gitlab-internal": ("gitlab", "running", 3),
        "jira-cloud": ("jira", "failed", 75),
        "pagerduty": ("pagerduty", "aborted", 12),
    }
    for identifier, (kind, status, minutes_ago) in states.items():
        body = {"installationId": identifier, "installationAppType": kind}
        assert (await admin.post("/v1/integration", json=body)).status_code == 201
        state = {
            "status": status,
            "lastResyncStart": iso_ago(minutes=-minutes_ago),
            "lastResyncEnd": None if status == "running" else iso_ago(minutes=2 - minutes_ago),
            "nextResync": iso_ago(minutes=60 - minutes_ago),
            "intervalInMinuets": 60,
        }
        await admin.patch(f"/v1/integration/{identifier}/resync-state", json=state)

    page = await as_admin(browser, catalog, "/ui/data-sources")
    rows = page.locator("#integrations tbody tr[data-search]:visible")
    await expect(rows).to_have_count(4)
    await expect(page.locator("#integrations")).to_contain_text("failed")
    for path in screenshot_paths("data-sources.png", docs=True):
        await page.screenshot(path=str(path), full_page=True)

    search = page.locator("#integration-search")
    await search.press_sequentially("git", delay=20)
    await expect(rows).to_have_count(2)
    await search.press_sequentially("lab", delay=20)
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("gitlab-internal")
    await search.fill("no such thing")
    await expect(rows).to_have_count(0)
    await expect(page.locator("[data-filter-empty]")).to_be_visible()
    await search.fill("GITLAB")
    await rows.first.locator("td").nth(1).click()  # anywhere on the row
    await expect(page).to_have_url(f"{catalog.url}/ui/data-sources/gitlab-internal")
    await expect(page.locator("#integration-status")).to_have_text("running")
    await page.context.close()


async def test_resync_button_shows_live_progress_without_reloading(
    browser: Browser, catalog: RunningCatalog, admin: httpx.AsyncClient, live_integration: Any
) -> None:
    page = await as_admin(browser, catalog, f"/ui/data-sources/{LIVE}")
    await expect(page.locator("#live-indicator")).to_have_text("live")
    await expect(page.locator("#integration-status")).to_have_text("completed")
    await page.evaluate("window.__sameDocument = true")

    await page.click("#resync-button")
    status = page.locator("#integration-status")
    await expect(status).to_have_text("running", timeout=SLOW)
    persons = page.locator('#current-run .kind[data-kind="fake-person"]')
    await expect(persons).to_have_attribute("data-status", "running", timeout=SLOW)
    await expect(page.locator("#notice")).to_contain_text("Resync requested")
    for path in screenshot_paths("integration-run.png", docs=True):
        await page.screenshot(path=str(path), full_page=True)

    await expect(status).to_have_text("completed", timeout=SLOW)
    await expect(persons.locator('[data-count="fetched"]')).to_have_text(f"{PERSONS:,}")
    await expect(persons.locator('[data-count="unchanged"]')).to_have_text(f"{PERSONS:,}")
    newest = page.locator("#runs tbody.run").first
    await expect(newest).to_have_attribute("data-status", "completed", timeout=SLOW)
    await expect(newest).to_contain_text("ui")
    assert await page.evaluate("window.__sameDocument") is True  # never reloaded

    run = (await admin.get(f"/v1/integration/{LIVE}/runs", params={"limit": 1})).json()["runs"][0]
    assert run["trigger"] == "ui"
    assert run["status"] == "completed"
    await page.context.close()


async def test_resync_during_a_run_marks_the_first_run_aborted(
    browser: Browser, catalog: RunningCatalog, live_integration: Any
) -> None:
    page = await as_admin(browser, catalog, f"/ui/data-sources/{LIVE}")
    await expect(page.locator("#live-indicator")).to_have_text("live")
    await page.click("#resync-button")
    head = page.locator("#current-run .run-head")
    await expect(head).to_have_attribute("data-status", "running", timeout=SLOW)
    first = await head.get_attribute("data-run")
    assert first is not None
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#current-run [data-count=fetched]')]"
        ".some(e => e.textContent !== '0')"
    )

    await page.click("#resync-button")
    aborted = page.locator(f'#runs tbody.run[data-run="{first}"]')
    await expect(aborted).to_have_attribute("data-status", "aborted", timeout=SLOW)
    await expect(aborted).to_contain_text("aborted by")
    await expect(aborted).to_contain_text("the run was aborted")  # why deletes were skipped
    await expect(page.locator("#integration-status")).to_have_text("completed", timeout=SLOW)
    newest = page.locator("#runs tbody.run").first
    await expect(newest).to_have_attribute("data-status", "completed", timeout=SLOW)
    await expect(newest).to_contain_text(f"aborted {first}")
    await aborted.locator("summary").click()
    for path in screenshot_paths("integration-aborted.png"):
        await page.screenshot(path=str(path), full_page=True)
    await page.context.close()


async def test_a_viewer_gets_no_resync_button_and_forged_posts_are_refused(
    browser: Browser, catalog: RunningCatalog, admin: httpx.AsyncClient
) -> None:
    body = {"installationId": "viewed", "installationAppType": "fake"}
    assert (await admin.post("/v1/integration", json=body)).status_code == 201
    client_id, secret = await new_credential(catalog, Role.VIEWER)
    page = await signed_in_page(browser, catalog, client_id, secret, "/ui/data-sources/viewed")
    await expect(page.locator("#user-role")).to_have_text("viewer")
    await expect(page.locator("#integration-status")).to_be_visible()
    await expect(page.locator("#resync-button")).to_have_count(0)
    await expect(page.locator("#config-editor")).to_have_count(0)

    forge = """async (withToken) => {
        const form = new FormData();
        const token = document.querySelector("[name=csrf_token]").value;
        if (withToken) form.append("csrf_token", token);
        const url = "/ui/data-sources/viewed/resync";
        const response = await fetch(url, {method: "POST", body: form});
        return [response.status, await response.json()];
    }"""
    for with_token, reason in ((False, "CSRF"), (True, "viewer")):
        status, answer = await page.evaluate(forge, with_token)
        assert status == 403
        assert answer["ok"] is False
        assert answer["error"] == "forbidden"
        assert reason in answer["message"]
    pending = (await admin.get("/v1/integration/viewed/resync-request")).json()["request"]
    assert pending is None or pending["source"] != "ui"
    await page.context.close()


async def test_browse_entities_and_follow_relations_both_ways(
    browser: Browser, catalog: RunningCatalog, live_integration: Any
) -> None:
    page = await as_admin(browser, catalog, "/ui/catalog")
    await page.click("#blueprints >> text=Fake Person")
    await expect(page).to_have_url(f"{catalog.url}/ui/catalog/fakePerson")
    summary = page.locator("#page-summary")
    await expect(summary).to_have_text(showing(1, 50, PERSONS))
    first_row = page.locator("#entities tbody tr").first

    for path in screenshot_paths("entities.png"):
        await page.screenshot(path=str(path))
    await page.click("#next-page")
    await expect(summary).to_have_text(showing(51, 100, PERSONS))
    await page.click("#prev-page")
    await expect(summary).to_have_text(showing(1, 50, PERSONS))

    await page.click("a.sort[data-sort=identifier]")  # already ascending: now descending
    await expect(page).to_have_url(
        f"{catalog.url}/ui/catalog/fakePerson?sort=identifier&dir=desc&size=50"
    )
    descending = await first_row.locator("td").first.inner_text()
    await page.click("a.sort[data-sort=identifier]")
    ascending = await first_row.locator("td").first.inner_text()
    assert ascending < descending

    await page.fill("#entity-search", ascending)
    await page.press("#entity-search", "Enter")
    await expect(summary).to_have_text(showing(1, 1, 1))
    await first_row.click()
    await expect(page.locator("#entity-identifier")).to_have_text(ascending)
    await expect(page.locator("#entity-datasource")).to_contain_text(LIVE)
    for path in screenshot_paths("entity.png"):
        await page.screenshot(path=str(path), full_page=True)

    team = page.locator('#relations-out a[data-relation="team"]')
    team_id = await team.inner_text()
    await team.click()
    await expect(page).to_have_url(f"{catalog.url}/ui/catalog/fakeTeam/{team_id}")
    back = page.locator(f'#relations-in a[href="/ui/catalog/fakePerson/{ascending}"]')
    await expect(back).to_have_count(1)
    await back.click()
    await expect(page.locator("#entity-identifier")).to_have_text(ascending)
    await page.context.close()
