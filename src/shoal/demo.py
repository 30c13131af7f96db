"""``shoal demo``: a catalog on the embedded SQLite default, filled with real data at once.

Inside a git working tree (the current directory or one of its parents) the demo syncs that
repository with the bundled ``git`` integration -- its branches, contributors and CODEOWNERS
rules -- and then a small synthetic organisation with the ``fake`` integration; elsewhere it
syncs the fake organisation only. It prints each resync and a summary of the catalog, read
back through the catalog's API. Both resyncs take a few seconds together.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from shoal.catalog.server import running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.integrations import fake, git
from shoal.sync.integration import Integration
from shoal.sync.run_record import RunRecord, RunStatus
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings
from shoal.types import JSONObject

__all__ = ["run_demo"]

GIT_IDENTIFIER = "git"
FAKE_IDENTIFIER = "fake-org"


async def run_demo(args: argparse.Namespace) -> int:
    console = Console()
    data_dir = Path(args.data_dir)
    settings = CatalogSettings(port=args.port, data_dir=data_dir)
    repository = await git.toplevel(Path.cwd())
    async with running_catalog(settings) as catalog:
        console.print(
            f"[bold]Shoal catalog[/] on {catalog.url} (SQLite: {settings.resolved_database_url})"
        )
        credentials = orjson.loads((data_dir / "admin-credentials.json").read_bytes())
        console.print(f"Admin credential: {(data_dir / 'admin-credentials.json').resolve()}")
        runner_settings = RunnerSettings(
            catalog_url=catalog.url,
            client_id=credentials["clientId"],
            client_secret=credentials["clientSecret"],
        )
        records: list[RunRecord] = []
        if repository is not None:
            integration = git.create_integration(git.GitSettings.of([repository], depth=0))
            what = f"Reading the git repository {repository}…"
            records.append(
                await _resync(console, integration, runner_settings, GIT_IDENTIFIER, what)
            )
        else:
            console.print(
                "[yellow]Not inside a git repository[/]: only the fake organisation is synced."
            )
        persons = 1000 if repository is not None else 5000
        integration = fake.create_integration(fake.FakeSettings(persons=persons, page_size=500))
        what = "Resyncing the fake organisation…"
        records.append(await _resync(console, integration, runner_settings, FAKE_IDENTIFIER, what))
        async with _client(catalog.url, credentials) as client:
            await _print_catalog(console, client)
            if repository is not None:
                await _print_repository(console, client, git.repository_id(repository))
        if not args.keep_running:
            console.print(
                f"\nThe catalog is stored in {data_dir}; to keep it serving (the web UI, the"
                " API, resync triggers), run: shoal demo --keep-running"
            )
        else:
            console.print(f"\nWeb UI: {catalog.url}/  API docs: {catalog.url}/docs")
            for record in records:
                url = f"{catalog.url}/v1/integration/{record.integration}"
                console.print(f"Resync {record.integration} again: PATCH {url}")
            console.print("Serving until Ctrl-C…")
            await asyncio.Event().wait()
    return 0 if all(record.status is RunStatus.COMPLETED for record in records) else 1


async def _resync(
    console: Console, integration: Integration, settings: RunnerSettings, identifier: str, what: str
) -> RunRecord:
    runner = IntegrationRunner(integration, replace(settings, identifier=identifier))
    try:
        with console.status(what):
            record = await runner.once()
    finally:
        await runner.aclose()
    _print_run(console, record)
    return record


def _print_run(console: Console, record: RunRecord) -> None:
    title = f"{record.integration}: resync {record.status.value} in {record.duration or 0:.2f} s"
    table = Table(title=title)
    for column in ("kind", "status", "fetched", "upserted", "unchanged", "failed", "deleted"):
        table.add_column(column, justify="right" if column not in ("kind", "status") else "left")
    for kind in record.kinds:
        table.add_row(
            kind.kind,
            kind.status.value,
            str(kind.fetched),
            str(kind.upserted),
            str(kind.unchanged),
            str(kind.failed),
            str(kind.deleted),
        )
    console.print(table)
    for kind in record.kinds:
        for error in kind.errors.values():
            console.print(f"[red]{kind.kind}[/]: {error.message}")
    phase = record.delete_phase
    console.print(f"Delete phase: {phase.status}" + (f" ({phase.reason})" if phase.reason else ""))


@contextlib.asynccontextmanager
async def _client(url: str, credentials: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client logged in with the demo's admin credential."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        token = (await client.post("/v1/auth/access_token", json=credentials)).json()["accessToken"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


async def _print_catalog(console: Console, client: httpx.AsyncClient) -> None:
    blueprints = (await client.get("/v1/blueprints")).json()["blueprints"]
    table = Table(title="Catalog")
    table.add_column("blueprint")
    table.add_column("entities", justify="right")
    for blueprint in blueprints:
        page = await client.get(
            f"/v1/blueprints/{blueprint['identifier']}/entities", params={"limit": 1}
        )
        table.add_row(blueprint["identifier"], str(page.json()["total"]))
    console.print(table)


async def _entities_of(client: httpx.AsyncClient, blueprint: str) -> list[JSONObject]:
    rule = {"property": "$blueprint", "operator": "=", "value": blueprint}
    response = await client.post("/v1/entities/search", json={"combinator": "and", "rules": [rule]})
    entities: list[JSONObject] = response.json()["entities"]
    return entities


def _related(entities: list[JSONObject], relation: str, identifier: str) -> list[JSONObject]:
    """The entities whose ``relation`` (one identifier or a list of them) names ``identifier``."""
    return [
        entity
        for entity in entities
        if identifier
        in (lambda v: v if isinstance(v, list) else [v])(entity["relations"].get(relation))
    ]


async def _print_repository(console: Console, client: httpx.AsyncClient, identifier: str) -> None:
    """The repository as the catalog now has it: properties, branches, top contributors."""
    repositories = await _entities_of(client, "gitRepository")
    repository = next((r for r in repositories if r["identifier"] == identifier), None)
    if repository is None:
        return
    properties = repository["properties"]
    branches = _related(await _entities_of(client, "gitBranch"), "repository", identifier)
    rules = _related(await _entities_of(client, "gitCodeowner"), "repository", identifier)
    contributors = [
        (c["title"], (c["properties"].get("commitsByRepository") or {}).get(identifier, 0))
        for c in _related(await _entities_of(client, "gitContributor"), "repositories", identifier)
    ]
    contributors.sort(key=lambda pair: (-pair[1], pair[0]))
    top = ", ".join(f"{name} ({commits})" for name, commits in contributors[:5])
    more = f" and {len(contributors) - 5} more" if len(contributors) > 5 else ""
    languages = list((properties.get("languages") or {}).items())[:5]
    table = Table(title=f"This repository: {repository['title']}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("identifier", identifier)
    table.add_row("README title", properties.get("readmeTitle") or "—")
    table.add_row("default branch", properties.get("defaultBranch") or "—")
    table.add_row("last commit", properties.get("lastCommitAt") or "—")
    table.add_row(
        "files", f"{properties.get('fileCount')}: " + ", ".join(f"{n} {c}" for n, c in languages)
    )
    table.add_row("branches", ", ".join(sorted(b["properties"]["name"] for b in branches)) or "—")
    table.add_row("contributors", (top + more) or "—")
    table.add_row("CODEOWNERS rules", str(len(rules)))
    console.print(table)
