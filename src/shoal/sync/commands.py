"""What the ``shoal`` CLI runs on the integration side."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from shoal.errors import CatalogError, ConfigError
from shoal.sync.integration import Integration
from shoal.sync.run_record import RunStatus
from shoal.sync.runner import IntegrationRunner
from shoal.sync.settings import RunnerSettings
from shoal.sync.supervisor import Policy
from shoal.tuning import tune_gc
from shoal.types import JSONObject

__all__ = ["load_integration", "run_integration", "trigger_resync"]


def load_integration(name_or_path: str) -> Integration:
    """A bundled integration by name (``fake``), or a Python file defining ``integration``."""
    path = Path(name_or_path)
    if path.suffix == ".py" and path.exists():
        spec = importlib.util.spec_from_file_location(f"shoal_user_integration_{path.stem}", path)
        if spec is None or spec.loader is None:
            message = f"cannot load {path}"
            raise ConfigError(message)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(f"shoal.integrations.{name_or_path}")
        except ModuleNotFoundError:
            message = f"no bundled integration {name_or_path!r} and no such Python file"
            raise ConfigError(message) from None
    found: Any = getattr(module, "integration", None)
    if found is None and hasattr(module, "create_integration"):
        found = module.create_integration()
    if not isinstance(found, Integration):
        message = f"{name_or_path} defines neither `integration` nor `create_integration()`"
        raise ConfigError(message)
    return found


def _log_level(environ: Mapping[str, str]) -> str:
    level = environ.get("SHOAL_LOG_LEVEL") or "INFO"
    if level.upper() not in logging.getLevelNamesMapping():  # WARN and FATAL too
        message = (
            f"SHOAL_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {level!r}"
        )
        raise ConfigError(message)
    return level.upper()


async def run_integration(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=_log_level(os.environ), format="%(asctime)s %(levelname)s %(message)s"
    )
    integration = load_integration(args.integration)
    settings = RunnerSettings.from_env(
        os.environ,
        catalog_url=args.catalog_url,
        client_id=args.client_id,
        client_secret=args.client_secret,
        identifier=args.identifier,
        interval_minutes=args.interval,
        listener=args.listener,
        poll_interval=args.poll_interval,
        policy=Policy(args.policy) if args.policy else None,
        resync_on_start=False if args.no_resync_on_start else None,
    )
    tune_gc()  # after loading: the integration's own modules and setup are frozen too
    runner = IntegrationRunner(integration, settings)
    main = asyncio.current_task()
    assert main is not None
    # SIGTERM stops the process like Ctrl-C: the running resync is aborted and recorded once
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    try:
        if args.once:
            try:
                record = await runner.once()
            except asyncio.CancelledError:
                print("resync aborted: the process was stopped")
                return 1
            print(f"resync {record.id}: {record.status.value}")
            return 0 if record.status is RunStatus.COMPLETED else 1
        try:
            await runner.serve()
        except asyncio.CancelledError:
            return 0
        return 0
    finally:
        await runner.aclose()


async def trigger_resync(
    catalog_url: str, client_id: str | None, client_secret: str | None, identifier: str
) -> JSONObject:
    """``POST /v1/integration/{id}/resync`` with source ``cli``."""
    if not client_id or not client_secret:
        message = "set SHOAL_CLIENT_ID and SHOAL_CLIENT_SECRET (or --client-id/--client-secret)"
        raise ConfigError(message)
    async with httpx.AsyncClient(base_url=catalog_url.rstrip("/"), timeout=30) as client:
        try:
            token = await client.post(
                "/v1/auth/access_token", json={"clientId": client_id, "clientSecret": client_secret}
            )
            _raise_for(token)
            response = await client.post(
                f"/v1/integration/{identifier}/resync",
                json={"source": "cli"},
                headers={"Authorization": f"Bearer {token.json()['accessToken']}"},
            )
            _raise_for(response)
        except httpx.HTTPError as exc:
            message = f"cannot reach the catalog at {catalog_url}: {exc}"
            raise ConfigError(message) from None
        request: JSONObject = response.json()["request"]
        return request


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        message = response.json().get("message", response.text)
    except ValueError:
        message = response.text
    error = CatalogError(f"{response.status_code}: {message}")
    error.status = response.status_code
    raise error
