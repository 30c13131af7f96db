"""The SDK surface: handler shapes, hooks and typed settings."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from shoal.errors import ConfigError
from shoal.sync import Integration
from shoal.sync.settings import RunnerSettings
from shoal.sync.settings_loader import load_settings


async def collect(integration: Integration, kind: str) -> list[list[dict[str, Any]]]:
    return [batch async for batch in integration.fetch(kind)]


async def test_async_generator_and_plain_function_handlers() -> None:
    integration = Integration("toy")

    @integration.on_resync("paged")
    async def paged(kind: str) -> AsyncIterator[list[dict[str, Any]]]:
        for page in range(3):
            yield [{"id": f"{kind}-{page}"}]

    @integration.on_resync("flat")
    async def flat(kind: str) -> list[dict[str, Any]]:
        return [{"id": "only"}]

    assert await collect(integration, "paged") == [
        [{"id": "paged-0"}],
        [{"id": "paged-1"}],
        [{"id": "paged-2"}],
    ]
    assert await collect(integration, "flat") == [[{"id": "only"}]]
    assert integration.kinds == ["paged", "flat"]


async def test_closing_a_fetch_runs_the_handlers_cleanup_at_once_in_the_same_task() -> None:
    # a kind that stops early (a mapping error, a refused page, an abort) closes its fetch
    integration = Integration("toy")
    cleaned_up_in: list[asyncio.Task[Any] | None] = []

    @integration.on_resync("paged")
    async def paged(kind: str) -> AsyncIterator[list[dict[str, Any]]]:
        try:
            for page in range(3):
                yield [{"id": page}]
        finally:
            await asyncio.sleep(0)  # cleanup that awaits, as closing a session does
            cleaned_up_in.append(asyncio.current_task())

    pages = integration.fetch("paged")
    assert await anext(pages) == [{"id": 0}]
    await pages.aclose()
    assert cleaned_up_in == [asyncio.current_task()]


async def test_unknown_and_duplicate_kinds_are_config_errors() -> None:
    integration = Integration("toy")

    @integration.on_resync("a")
    async def first(kind: str) -> list[dict[str, Any]]:
        return []

    with pytest.raises(ConfigError, match="already has a resync handler"):
        integration.on_resync("a")(first)
    with pytest.raises(ConfigError, match="no resync handler for kind 'b'"):
        await collect(integration, "b")


async def test_start_hooks_run_in_order() -> None:
    integration = Integration("toy")
    calls: list[str] = []

    @integration.on_start
    async def one() -> None:
        calls.append("one")

    @integration.on_start
    async def two() -> None:
        calls.append("two")

    await integration.run_start_hooks()
    assert calls == ["one", "two"]


class ToySettings(BaseModel):
    url: str
    paths: list[str] = []
    page_size: int = 100


def test_settings_from_file_and_env(tmp_path: Path) -> None:
    config = tmp_path / "toy.yaml"
    config.write_text("url: https://example.invalid\npage_size: 5\n")
    env = {
        "SHOAL_TOY_CONFIG": str(config),
        "SHOAL_TOY_PATHS": '["a", "b"]',
        "SHOAL_TOY_PAGE_SIZE": "7",
    }
    settings = load_settings(ToySettings, prefix="SHOAL_TOY_", environ=env)
    assert settings == ToySettings(url="https://example.invalid", paths=["a", "b"], page_size=7)
    # a string setting keeps what looks like a number, a boolean or null
    for looks_like in ("123456", "true", "null", "2.5"):
        env = {"SHOAL_TOY_URL": looks_like}
        assert load_settings(ToySettings, prefix="SHOAL_TOY_", environ=env).url == looks_like


def test_bad_settings_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SHOAL_TOY_URL: Field required"):
        load_settings(ToySettings, prefix="SHOAL_TOY_", environ={})
    with pytest.raises(ConfigError, match="SHOAL_TOY_PAGE_SIZE"):
        load_settings(
            ToySettings,
            prefix="SHOAL_TOY_",
            environ={"SHOAL_TOY_URL": "x", "SHOAL_TOY_PAGE_SIZE": "many"},
        )
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(
            ToySettings,
            prefix="SHOAL_TOY_",
            environ={"SHOAL_TOY_CONFIG": str(tmp_path / "missing.yaml")},
        )
    broken = tmp_path / "broken.yaml"
    broken.write_text('url: x\ntoken: "s3cr3t-value\n')  # an unclosed quote
    with pytest.raises(ConfigError, match="is not valid YAML: line 3, column 1") as bad:
        load_settings(ToySettings, prefix="SHOAL_TOY_", environ={"SHOAL_TOY_CONFIG": str(broken)})
    assert "s3cr3t" not in str(bad.value) and "\n" not in str(bad.value)


@pytest.mark.parametrize(
    ("env", "overrides", "problem"),
    [
        ({"SHOAL_POLL_INTERVAL": "0"}, {}, "poll interval (seconds) must be at least 0.1"),
        ({}, {"poll_interval": 0.0}, "poll interval (seconds) must be at least 0.1"),
        ({}, {"interval_minutes": -5.0}, "scheduled resync interval (minutes, 0 for none) must be at least"),
        ({"SHOAL_LEASE_TTL": "inf"}, {}, "SHOAL_LEASE_TTL must be a number"),
        ({"SHOAL_BATCH_SIZE": "0.5"}, {}, "SHOAL_BATCH_SIZE must be a whole number"),
        ({"SHOAL_BATCH_SIZE": "0"}, {}, "batch size must be at least 1"),
        ({"SHOAL_SCHEDULED_RESYNC_INTERVAL": "-1"}, {}, "(minutes, 0 for none) must be at least"),
        ({"SHOAL_TARGET_IS_PORT": "maybe"}, {}, "SHOAL_TARGET_IS_PORT must be true or false"),
    ],
)
def test_runner_settings_out_of_range_are_config_errors(
    env: dict[str, str], overrides: dict[str, float], problem: str
) -> None:
    credentials = {"SHOAL_CLIENT_ID": "a", "SHOAL_CLIENT_SECRET": "b"}
    with pytest.raises(ConfigError, match=re.escape(problem)):
        RunnerSettings.from_env({**credentials, **env}, **overrides)
