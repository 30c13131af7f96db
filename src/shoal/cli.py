"""The ``shoal`` command: serve the catalog, manage credentials, trigger and run resyncs."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shoal import __version__
from shoal.errors import ShoalError

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]


async def _check_database(url: str) -> None:
    """Open (and migrate) the database once before serving, so a bad URL is a one-line error."""
    from shoal.catalog.store.database import open_database

    database = await open_database(url)
    await database.close()


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from shoal.catalog.app import create_app
    from shoal.catalog.server import GRACEFUL_SHUTDOWN_SECONDS
    from shoal.catalog.settings import CatalogSettings
    from shoal.tuning import shorten_switch_interval, tune_gc

    settings = CatalogSettings.from_env(
        os.environ,
        host=args.host,
        port=args.port,
        database_url=args.database_url,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        public_url=args.public_url,
    )
    asyncio.run(_check_database(settings.resolved_database_url))
    app = create_app(settings, announce=lambda line: print(line, file=sys.stderr, flush=True))
    tune_gc()
    shorten_switch_interval()
    print(
        f"Shoal catalog on http://{settings.host}:{settings.port} (API docs at /docs)",
        file=sys.stderr,
    )
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )  # fmt: skip
    return 0


async def _create_credential(args: argparse.Namespace) -> dict[str, Any]:
    from shoal.catalog.auth import Role
    from shoal.catalog.settings import CatalogSettings
    from shoal.catalog.store import open_store

    settings = CatalogSettings.from_env(
        os.environ,
        database_url=args.database_url,
        data_dir=Path(args.data_dir) if args.data_dir else None,
    )
    store = await open_store(settings.resolved_database_url, base_url=settings.resolved_public_url)
    try:
        role = Role(args.role)
        client_id, secret = await store.credentials.create(
            role, integration=args.integration, description=args.description
        )
    finally:
        await store.close()
    return {
        "clientId": client_id,
        "clientSecret": secret,
        "role": role.value,
        "integration": args.integration,
    }


def _credentials_create(args: argparse.Namespace) -> int:
    import orjson

    created = asyncio.run(_create_credential(args))
    print(orjson.dumps(created, option=orjson.OPT_INDENT_2).decode())
    return 0


def _resync(args: argparse.Namespace) -> int:
    from shoal.sync.commands import trigger_resync

    request = asyncio.run(
        trigger_resync(args.catalog_url, args.client_id, args.client_secret, args.identifier)
    )
    print(f"resync requested for {args.identifier}: {request['id']}")
    return 0


def _integration_run(args: argparse.Namespace) -> int:
    from shoal.sync.commands import run_integration

    return asyncio.run(run_integration(args))


def _demo(args: argparse.Namespace) -> int:
    from shoal.demo import run_demo

    return asyncio.run(run_demo(args))


def _add_catalog_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--catalog-url", default=os.environ.get("SHOAL_CATALOG_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument("--client-id", default=os.environ.get("SHOAL_CLIENT_ID"))
    parser.add_argument("--client-secret", default=os.environ.get("SHOAL_CLIENT_SECRET"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoal", description="A self-hosted software catalog.")
    parser.add_argument("--version", action="version", version=f"shoal {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the catalog server")
    serve.add_argument("--host", default=None, help="default 127.0.0.1 (SHOAL_HOST)")
    serve.add_argument("--port", type=int, default=None, help="default 8000 (SHOAL_PORT)")
    serve.add_argument(
        "--database-url", default=None, help="sqlite:///… or postgresql://… (SHOAL_DATABASE_URL)"
    )
    serve.add_argument("--data-dir", default=None, help="default ./shoal-data (SHOAL_DATA_DIR)")
    serve.add_argument(
        "--public-url", default=None, help="URL integrations use to reach this server"
    )
    serve.add_argument("--log-level", default="warning")
    serve.set_defaults(run=_serve)

    credentials = commands.add_parser("credentials", help="manage API credentials")
    credential_commands = credentials.add_subparsers(dest="credentials_command", required=True)
    create = credential_commands.add_parser("create", help="create a credential and print it")
    create.add_argument(
        "--role", choices=["admin", "member", "viewer", "integration"], default="member"
    )
    create.add_argument(
        "--integration", default=None, help="the integration an integration credential serves"
    )
    create.add_argument("--description", default=None)
    create.add_argument("--database-url", default=None)
    create.add_argument("--data-dir", default=None)
    create.set_defaults(run=_credentials_create)

    resync = commands.add_parser(
        "resync", help="trigger a resync of an integration through the API"
    )
    resync.add_argument("identifier")
    _add_catalog_flags(resync)
    resync.set_defaults(run=_resync)

    integration = commands.add_parser("integration", help="run integrations")
    integration_commands = integration.add_subparsers(dest="integration_command", required=True)
    run = integration_commands.add_parser("run", help="run an integration against a catalog")
    run.add_argument(
        "integration", help="a bundled integration name (fake, git, http, sql) or a path"
    )
    run.add_argument(
        "--identifier", default=None, help="the integration's identifier in the catalog"
    )
    run.add_argument(
        "--once", action="store_true", help="run one resync and exit (non-zero if it failed)"
    )
    run.add_argument("--no-resync-on-start", action="store_true")
    run.add_argument(
        "--interval", type=float, default=None, help="scheduled resync interval in minutes"
    )
    run.add_argument("--listener", choices=["push", "poll", "webhook", "none"], default=None)
    run.add_argument("--poll-interval", type=float, default=None, help="seconds between polls")
    run.add_argument("--policy", choices=["restart", "coalesce"], default=None)
    _add_catalog_flags(run)
    run.set_defaults(run=_integration_run)

    demo = commands.add_parser("demo", help="serve a catalog and sync this repository into it")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--data-dir", default="shoal-data")
    demo.add_argument("--keep-running", action="store_true")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.run(args))
    except ShoalError as exc:
        print(f"shoal: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
