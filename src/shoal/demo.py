"""``shoal demo``: a catalog on the embedded SQLite default, synced by a bundled integration."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from shoal.catalog.server import running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.integrations.fake import FakeSettings, create_integration
from shoal.sync.run_record import RunRecord, RunStatus
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings

__all__ = ["run_demo"]


async def run_demo(args: argparse.Namespace) -> int:
    console = Console()
    data_dir = Path(args.data_dir)
    settings = CatalogSettings(port=args.port, data_dir=data_dir)
    async with running_catalog(settings) as catalog:
        console.print(f"[bold]Shoal catalog[/] on {catalog.url} (SQLite: {settings.resolved_database_url})")
        credentials = orjson.loads((data_dir / "admin-credentials.json").read_bytes())
        console.print(f"Admin credential: {(data_dir / 'admin-credentials.json').resolve()}")
        runner_settings = RunnerSettings(
            catalog_url=catalog.url,
            client_id=credentials["clientId"],
            client_secret=credentials["clientSecret"],
            identifier="fake-org",
        )
        runner = IntegrationRunner(create_integration(FakeSettings(persons=5000, page_size=500)), runner_settings)
        try:
            with console.status("Resyncing the fake organisation…"):
                record = await runner.once()
        finally:
            await runner.aclose()
        _print_run(console, record)
        await _print_catalog(console, catalog.url, credentials)
        console.print(f"\nAPI docs: {catalog.url}/docs   ·   trigger a resync: PATCH {catalog.url}/v1/integration/fake-org")
        if args.keep_running:
            console.print("Serving until Ctrl-C…")
            await asyncio.Event().wait()
    return 0 if record.status is RunStatus.COMPLETED else 1


def _print_run(console: Console, record: RunRecord) -> None:
    table = Table(title=f"Resync {record.id}: {record.status.value} in {record.duration or 0:.2f} s")
    for column in ("kind", "status", "fetched", "upserted", "unchanged", "failed", "deleted"):
        table.add_column(column, justify="right" if column not in ("kind", "status") else "left")
    for kind in record.kinds:
        table.add_row(kind.kind, kind.status.value, str(kind.fetched), str(kind.upserted),
                      str(kind.unchanged), str(kind.failed), str(kind.deleted))  # fmt: skip
    console.print(table)
    phase = record.delete_phase
    console.print(f"Delete phase: {phase.status}" + (f" ({phase.reason})" if phase.reason else ""))


async def _print_catalog(console: Console, url: str, credentials: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        token = (await client.post("/v1/auth/access_token", json=credentials)).json()["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        blueprints = (await client.get("/v1/blueprints", headers=headers)).json()["blueprints"]
        table = Table(title="Catalog")
        table.add_column("blueprint")
        table.add_column("entities", justify="right")
        for blueprint in blueprints:
            page = await client.get(f"/v1/blueprints/{blueprint['identifier']}/entities", params={"limit": 1}, headers=headers)
            table.add_row(blueprint["identifier"], str(page.json()["total"]))
        console.print(table)
