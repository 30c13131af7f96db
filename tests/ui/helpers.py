"""Helpers shared by the web UI tests (not collected: no ``test_`` prefix)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from shoal.catalog.auth import Role
from shoal.catalog.server import RunningCatalog
from shoal.catalog.store import open_store
from shoal.sync.runner import IntegrationRunner

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
DOCS_IMAGES = REPO / "docs" / "img"
UPDATE_DOCS_SCREENSHOTS = os.environ.get("SHOAL_UPDATE_SCREENSHOTS") == "1"
"""Read at import: the suite's autouse fixture clears ``SHOAL_*`` variables before each test."""
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def require_chromium() -> None:
    """Skip browser tests without Debian's Chromium, unless under CI (which installs it)."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: apt-get install -y chromium (Playwright never downloads one)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def screenshot_paths(name: str, *, docs: bool = False) -> list[Path]:
    """Where a screenshot goes: always test-artifacts/ui/; the ones the docs show also to
    docs/img/ when asked to refresh them (``SHOAL_UPDATE_SCREENSHOTS=1``), so that test runs
    leave the work tree clean."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    paths = [ARTIFACTS / name]
    if docs and UPDATE_DOCS_SCREENSHOTS:
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        paths.append(DOCS_IMAGES / name)
    return paths


def iso_ago(**delta: float) -> str:
    """An ISO timestamp relative to now (negative deltas are in the past)."""
    return (datetime.now(UTC) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def showing(first: int, last: int, total: int | str) -> str:
    """The entity table's pager summary (with an en dash, as the page prints it)."""
    shown = f"{total:,}" if isinstance(total, int) else total
    return f"Showing {first:,}\u2013{last:,} of {shown}"


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "the page has no CSRF token"
    return match[1]


async def new_credential(catalog: RunningCatalog, role: Role) -> tuple[str, str]:
    """A credential created on the catalog's database, as ``shoal credentials create`` does."""
    store = await open_store(catalog.settings.resolved_database_url, base_url=catalog.url)
    try:
        return await store.credentials.create(role, description=f"ui test {role.value}")
    finally:
        await store.close()


async def sign_in(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    """Sign in through the login form (the cookie lands in the client's jar)."""
    form = await client.get("/ui/login")
    data = {"csrf_token": csrf_of(form.text), "clientId": client_id, "clientSecret": secret}
    return await client.post("/ui/login", data=data)


@contextlib.asynccontextmanager
async def browser_user(
    catalog: RunningCatalog, role: Role
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An httpx client signed in to the UI with a new credential of ``role``."""
    client_id, secret = await new_credential(catalog, role)
    async with httpx.AsyncClient(base_url=catalog.url, timeout=30) as client:
        response = await sign_in(client, client_id, secret)
        assert response.status_code == 303, response.text
        yield client, client_id


async def wait_for(predicate: Callable[[], Awaitable[T | None]], within: float = 20.0) -> T:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def serving(runner: IntegrationRunner) -> AsyncIterator[IntegrationRunner]:
    task = asyncio.create_task(runner.serve())
    try:
        yield runner
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.aclose()


def assert_forbidden(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["ok"] is False
    assert body["error"] == "forbidden"
    assert isinstance(body["message"], str)
    return body
