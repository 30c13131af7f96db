"""Run the unmodified Port Ocean integration in ``ocean_integration/`` against a Shoal catalog.

Ocean runs as a subprocess of the Ocean venv that ``make compat`` builds (``.venv-ocean/``, Python
3.12, ``port-ocean[cli]`` pinned in ``compat/ocean-constraints.txt``): ``ocean sail`` in the
integration's folder, configured only through the environment variables docs/ocean.md lists.
Everything the tests assert is read back through the catalog's API.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from shoal.catalog.auth import Role
from shoal.catalog.server import RunningCatalog
from shoal.catalog.store import open_store

REPO = Path(__file__).resolve().parents[2]
OCEAN_VENV = Path(os.environ.get("SHOAL_COMPAT_OCEAN_VENV") or REPO / ".venv-ocean")
OCEAN_PYTHON = OCEAN_VENV / "bin" / "python"
OCEAN_CLI = OCEAN_VENV / "bin" / "ocean"
INTEGRATION_DIR = Path(__file__).resolve().parent / "ocean_integration"
INTEGRATION_TYPE = "shoal-compat"
INTEGRATION_VERSION: str = tomllib.loads((INTEGRATION_DIR / "pyproject.toml").read_text())[
    "project"
]["version"]

MISSING_VENV = (
    f"the Ocean venv {OCEAN_VENV} is missing: `make compat` builds it (needs Python >= 3.12) "
    "and runs this suite"
)

T = TypeVar("T")


def datasource(identifier: str) -> str:
    """What the catalog stamps on the entities this Ocean integration writes (its User-Agent)."""
    return f"port-ocean/{INTEGRATION_TYPE}/{INTEGRATION_VERSION}/{identifier}/exporter"


def source_data(
    *, teams: int = 4, services: int = 30, deployments: int = 10, language: str = "python"
) -> dict[str, Any]:
    """The third-party data the integration reads: teams ← services ← deployments."""
    return {
        "team": [{"id": f"t{i}", "name": f"Team {i}", "size": 3 + i} for i in range(teams)],
        "service": [
            {
                "id": f"s{i:02d}",
                "name": f"Service {i}",
                "language": language,
                "tier": i % 3,
                "team": f"t{i % teams}",
            }
            for i in range(services)
        ],
        "deployment": [
            {"id": f"d{i:02d}", "service": f"s{i:02d}", "environment": "prod"}
            for i in range(deployments)
        ],
    }


def write_source(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)  # the integration never reads a half-written file


async def integration_credential(catalog: RunningCatalog, identifier: str) -> tuple[str, str]:
    """What `shoal credentials create --role integration --integration ID` prints."""
    store = await open_store(catalog.settings.resolved_database_url, base_url=catalog.url)
    try:
        return await store.credentials.create(
            Role.INTEGRATION, integration=identifier, description="compat suite"
        )
    finally:
        await store.close()


@dataclass
class Ocean:
    """One ``ocean sail`` process."""

    process: asyncio.subprocess.Process
    log: Path
    port: int

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def wait(self, timeout: float) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            message = f"Ocean did not exit within {timeout} s; its log:\n{self.log_tail()}"
            raise AssertionError(message) from None

    async def interrupt(self, timeout: float = 20) -> int:
        """Ctrl-C: Ocean's graceful shutdown (it reports a running resync as aborted)."""
        if self.running:
            self.process.send_signal(signal.SIGINT)
        return await self.wait(timeout)

    async def kill(self) -> None:
        """SIGKILL: the process vanishes without reporting anything."""
        if self.running:
            self.process.kill()
        await self.process.wait()


@dataclass
class OceanLauncher:
    """Starts Ocean processes for one test and stops whatever is left at teardown."""

    catalog: RunningCatalog
    workdir: Path
    started: list[Ocean] = field(default_factory=list)

    async def start(
        self,
        identifier: str,
        credential: tuple[str, str],
        source: Path,
        listener: Mapping[str, Any],
        *,
        port: int,
        env: Mapping[str, str] | None = None,
    ) -> Ocean:
        client_id, client_secret = credential
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(self.workdir)),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            # how docs/ocean.md points an integration at Shoal
            "OCEAN__PORT__BASE_URL": self.catalog.url,
            "OCEAN__PORT__CLIENT_ID": client_id,
            "OCEAN__PORT__CLIENT_SECRET": client_secret,
            "OCEAN__INTEGRATION__IDENTIFIER": identifier,
            "OCEAN__INTEGRATION__TYPE": INTEGRATION_TYPE,
            "OCEAN__EVENT_LISTENER": json.dumps(listener),
            # test speed-ups: heartbeat every second (the catalog's stale timeout is 3 s here)
            "OCEAN__STATUS_HEARTBEAT_INTERVAL_SECONDS": "1",
            "OCEAN__CACHING_STORAGE_MODE": "memory",
            "COMPAT_SOURCE_FILE": str(source),
            **(env or {}),
        }
        log = self.workdir / f"ocean-{identifier}-{len(self.started)}.log"
        with log.open("wb") as handle:
            process = await asyncio.create_subprocess_exec(
                str(OCEAN_PYTHON),
                str(OCEAN_CLI),
                "sail",
                "--port",
                str(port),
                ".",
                cwd=INTEGRATION_DIR,
                env=environ,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=handle,
                stderr=asyncio.subprocess.STDOUT,
            )
        ocean = Ocean(process, log, port)
        self.started.append(ocean)
        return ocean

    async def stop_all(self) -> None:
        for ocean in self.started:
            if ocean.running:
                ocean.process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(ocean.process.wait(), 10)
                except TimeoutError:
                    await ocean.kill()


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    what: str,
    ocean: Ocean | None = None,
    interval: float = 0.2,
) -> T:
    """Poll ``check`` until it returns something truthy; fail with Ocean's log tail if it never does."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: T | None = None
    while True:
        last = await check()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            log = f"\nOcean's log:\n{ocean.log_tail()}" if ocean is not None else ""
            message = f"timed out after {timeout} s waiting for {what}; last: {last!r}{log}"
            raise AssertionError(message)
        await asyncio.sleep(interval)


# --- reading the catalog's state -----------------------------------------------------------------


async def integration(admin: httpx.AsyncClient, identifier: str) -> dict[str, Any] | None:
    response = await admin.get(f"/v1/integration/{identifier}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    record: dict[str, Any] = response.json()["integration"]
    return record


async def runs(admin: httpx.AsyncClient, identifier: str) -> list[dict[str, Any]]:
    """The run history, newest first."""
    response = await admin.get(f"/v1/integration/{identifier}/runs")
    if response.status_code == 404:
        return []
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["runs"]
    return found


async def entities(
    admin: httpx.AsyncClient, identifier: str, blueprint: str
) -> dict[str, dict[str, Any]]:
    """The entities of ``blueprint`` the integration owns, by identifier."""
    response = await admin.post(
        "/v1/entities/search",
        json={
            "combinator": "and",
            "rules": [
                {"property": "$blueprint", "operator": "=", "value": blueprint},
                {"property": "$datasource", "operator": "=", "value": datasource(identifier)},
            ],
        },
    )
    response.raise_for_status()
    return {entity["identifier"]: entity for entity in response.json()["entities"]}


def kinds(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {kind["kind"]: kind for kind in run.get("kinds", [])}
