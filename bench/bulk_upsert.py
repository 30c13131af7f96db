"""Bulk upsert throughput of the catalog server on SQLite, against a raw ``sqlite3`` floor.

    python -m bench.bulk_upsert            # 100 000 entities
    python -m bench.bulk_upsert --quick    # 20 000 entities
    python -m bench.bulk_upsert --profile  # also profile the server (needs pyinstrument)

The **floor** is the least a catalog on SQLite can spend. It creates the schema with
:func:`shoal.catalog.store.open_store` on a separate file, then ``executemany``-inserts the
same rows (identical column values, prepared beforehand) into the ``entities`` table with the
stdlib ``sqlite3`` module, under the server's pragmas, with one transaction per batch.

The **server** is ``running_catalog`` in a child process, so the clients do not compete with it
for the GIL. A blueprint with 7 properties and one relation is created, then the clients
POST ``/v1/blueprints/{bp}/entities/bulk`` in batches of 500 (bodies encoded beforehand), with
a few concurrent clients and Ocean's flags (``upsert``, ``merge``,
``create_missing_related_entities``). The first phase creates every entity; the second phase
rewrites every entity with changed values. The server also keeps ``entity_relations`` (one row
per relation value), which the floor does not.

The table goes to stdout and to ``bench/out/bulk_upsert.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson

from shoal.catalog.server import running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.catalog.store import open_store
from shoal.catalog.store.database import (  # the server's pragmas, exactly
    _sqlite_setup,
    control_file,
)
from shoal.clock import now_us

OUT = Path(__file__).parent / "out"
BLUEPRINT = "bench_service"
TEAM_BLUEPRINT = "bench_team"
TEAMS = 50
AGENT = "port-ocean/bench/1.0.0/bench/exporter"
FLAGS = {"upsert": "true", "merge": "true", "create_missing_related_entities": "true"}
SERVICE = {
    "identifier": BLUEPRINT,
    "title": "Bench service",
    "schema": {
        "properties": {
            "language": {"type": "string"},
            "stars": {"type": "integer"},
            "score": {"type": "number"},
            "archived": {"type": "boolean"},
            "topics": {"type": "array", "items": {"type": "string"}},
            "url": {"type": "string", "format": "url"},
            "owner": {"type": "string", "format": "email"},
        },
        "required": ["language"],
    },
    "relations": {"team": {"target": TEAM_BLUEPRINT, "many": False}},
}


def entity(index: int, generation: int) -> dict[str, Any]:
    """Entity ``index`` as written in phase ``generation`` (0: create, 1: rewrite)."""
    return {
        "identifier": f"svc-{index:07d}",
        "title": f"Service {index} v{generation}",
        "properties": {
            "language": ("python", "go", "rust", "java")[(index + generation) % 4],
            "stars": index * 7 + generation,
            "score": (index % 1000) / 10 + generation,
            "archived": (index + generation) % 11 == 0,
            "topics": [f"topic-{index % 13}", f"gen-{generation}"],
            "url": f"https://git.example.com/org/svc-{index}",
            "owner": f"owner{index % 97}@example.com",
        },
        "relations": {"team": f"team-{(index + generation) % TEAMS}"},
    }


def batches(count: int, size: int, generation: int) -> list[bytes]:
    return [
        orjson.dumps(
            {"entities": [entity(i, generation) for i in range(start, min(start + size, count))]}
        )
        for start in range(0, count, size)
    ]


@dataclass(frozen=True)
class Result:
    name: str
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds


# --- the floor ----------------------------------------------------------------------------------


def floor(directory: Path, count: int, size: int, actor: str) -> Result:
    path = directory / "floor.db"

    async def create_schema() -> None:
        store = await open_store(f"sqlite:///{path}", base_url="http://127.0.0.1")
        await store.close()

    asyncio.run(create_schema())
    now = now_us()
    rows = []
    for index in range(count):
        item = entity(index, 0)
        rows.append(
            (BLUEPRINT, item["identifier"], item["title"], None, "[]",
             orjson.dumps(item["properties"]).decode(), orjson.dumps(item["relations"]).decode(),
             AGENT, now, now, actor, actor)
        )  # fmt: skip
    insert = (
        "INSERT INTO entities (blueprint, identifier, title, icon, team, properties, relations,"
        " datasource, created_at, updated_at, created_by, updated_by)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    connection = sqlite3.connect(path, isolation_level=None)
    _sqlite_setup(control_file(path))(connection, None)
    try:
        started = time.perf_counter()
        for start in range(0, count, size):
            connection.execute("BEGIN")
            connection.executemany(insert, rows[start : start + size])
            connection.execute("COMMIT")
        seconds = time.perf_counter() - started
        stored = connection.execute("SELECT count(*) FROM entities").fetchone()[0]
    finally:
        connection.close()
    assert stored == count, (stored, count)
    return Result("raw sqlite3 executemany (floor)", count, seconds)


# --- the server ---------------------------------------------------------------------------------


def serve(data_dir: str, max_bulk: int, profile_to: str | None, pipe: Connection) -> None:
    """The child process: serve the catalog until the parent says stop."""

    async def main() -> None:
        settings = CatalogSettings(
            port=0,
            data_dir=Path(data_dir),
            database_url=f"sqlite:///{Path(data_dir) / 'server.db'}",
            max_bulk_entities=max_bulk,
        )
        async with running_catalog(settings) as running:
            pipe.send(running.url)
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    if profile_to is None:
        asyncio.run(main())
        return
    from pyinstrument import Profiler  # a one-off tool, not a dependency

    profiler = Profiler(interval=0.0005)
    profiler.start()
    asyncio.run(main())
    profiler.stop()
    Path(profile_to).write_text(profiler.output_text(unicode=False, color=False, show_all=False))


async def _post_all(url: str, token: str, bodies: Sequence[bytes], clients: int) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {
        "Authorization": f"Bearer {token}",
        "User-Agent": AGENT,
        "Content-Type": "application/json",
    }
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=300
    ) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post(
                    f"/v1/blueprints/{BLUEPRINT}/entities/bulk", params=FLAGS, content=body
                )
                result = response.json()
                if response.status_code != 200 or result["errors"]:
                    message = f"bulk upsert failed: {response.status_code} {response.text[:300]}"
                    raise RuntimeError(message)

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(clients):
                group.create_task(worker())
        return time.perf_counter() - started


async def _setup(url: str, credentials: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        token: str = (await client.post("/v1/auth/access_token", json=credentials)).json()[
            "accessToken"
        ]
        client.headers.update({"Authorization": f"Bearer {token}", "User-Agent": AGENT})
        for body in ({"identifier": TEAM_BLUEPRINT, "title": "Bench team"}, SERVICE):
            (await client.post("/v1/blueprints", json=body)).raise_for_status()
        teams = {"entities": [{"identifier": f"team-{i}"} for i in range(TEAMS)]}
        path = f"/v1/blueprints/{TEAM_BLUEPRINT}/entities/bulk"
        (await client.post(path, params={"upsert": "true"}, json=teams)).raise_for_status()
        return token


async def _stored(url: str, token: str) -> int:
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        response = await client.get(f"/v1/blueprints/{BLUEPRINT}/entities", params={"limit": 1})
        total: int = response.json()["total"]
        return total


def server(
    directory: Path, count: int, size: int, clients: int, profile_to: str | None
) -> list[Result]:
    data_dir = directory / "server"
    creates, rewrites = batches(count, size, 0), batches(count, size, 1)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=serve, args=(str(data_dir), max(size, 1000), profile_to, child)
    )
    process.start()
    try:
        if not parent.poll(60):
            message = "the catalog did not start within 60 s"
            raise RuntimeError(message)
        url: str = parent.recv()
        credentials = orjson.loads((data_dir / "admin-credentials.json").read_bytes())
        token = asyncio.run(_setup(url, credentials))
        create_seconds = asyncio.run(_post_all(url, token, creates, clients))
        update_seconds = asyncio.run(_post_all(url, token, rewrites, clients))
        stored = asyncio.run(_stored(url, token))
        assert stored == count, (stored, count)
    finally:
        parent.send("stop")
        process.join(60)
        if process.is_alive():
            process.terminate()
    return [
        Result("server: creates", count, create_seconds),
        Result("server: updates", count, update_seconds),
    ]


# --- report -------------------------------------------------------------------------------------


def table(results: list[Result], count: int, size: int, clients: int) -> str:
    base = results[0].rate
    lines = [
        f"# Bulk upsert throughput: {count} entities, batches of {size}, {clients} clients",
        "",
        "| path | entities/s | wall s | ratio to floor |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r.name} | {r.rate:,.0f} | {r.seconds:.2f} | {r.rate / base:.3f} |" for r in results
    ]
    lines += [
        "",
        "ratio to floor = entities/s of the path / entities/s of the floor (1.0 would be no"
        " overhead over raw inserts).",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
        f" {platform.machine()}, {multiprocessing.cpu_count()} CPUs.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bulk_upsert", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--count", type=int, default=100_000, help="entities (default 100000)")
    parser.add_argument("--quick", action="store_true", help="20000 entities")
    parser.add_argument("--batch", type=int, default=500, help="entities per bulk request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument(
        "--profile", action="store_true", help="profile the server with pyinstrument (bench/out/)"
    )
    args = parser.parse_args(argv)
    count = 20_000 if args.quick else args.count
    OUT.mkdir(parents=True, exist_ok=True)
    profile_to = str(OUT / "bulk_upsert-profile.txt") if args.profile else None
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        actor = "b" * 24  # as long as the server's client ids
        results = [floor(Path(tmp), count, args.batch, actor)]
        results += server(Path(tmp), count, args.batch, args.clients, profile_to)
    report = table(results, count, args.batch, args.clients)
    (OUT / "bulk_upsert.md").write_text(report)
    sys.stdout.write(report)
    if profile_to:
        sys.stdout.write(f"\nprofile: {profile_to}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
