"""The sql integration's YAML config, URL handling, value conversion and default mapping."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from ipaddress import ip_address
from pathlib import Path
from uuid import UUID

import pytest
import yaml

from shoal.errors import ConfigError
from shoal.integrations._config_file import expand_env
from shoal.integrations.sql import (
    SqlConfig,
    async_url,
    create_integration,
    json_row,
    json_value,
    load_default_blueprints,
)
from shoal.sync.mapping import compile_resource, parse_mapping_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sql.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_config(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "url: postgresql://catalog:${DB_PASSWORD}@db.internal/inventory\n"
        "pageSize: 200\n"
        "kinds:\n"
        "  service: {query: 'SELECT * FROM services WHERE tier = :tier', params: {tier: 1}}\n"
        "  team: {query: SELECT * FROM teams, pageSize: 50}\n",
    )
    config = SqlConfig.from_env({"SHOAL_SQL_CONFIG": str(path), "DB_PASSWORD": "pw"})
    assert config.engine_url.drivername == "postgresql+asyncpg"
    assert config.engine_url.password == "pw"
    assert "pw" not in repr(config)
    assert config.kinds["service"].params == {"tier": 1}
    assert (config.page_size_of("service"), config.page_size_of("team")) == (200, 50)


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite"),
        ("postgres://u@h/d", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg"),
    ],
)
def test_urls_get_an_asyncio_driver(url: str, driver: str) -> None:
    assert async_url(url).drivername == driver


ONE = {"a": {"query": "SELECT 1"}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "not a url", "kinds": ONE}, "not a SQLAlchemy database URL"),
        ({"url": "sqlite+pysqlite:///x.db", "kinds": ONE}, "pysqlite is not an asyncio driver"),
        ({"url": "nosuchdb://h/d", "kinds": ONE}, "no driver for nosuchdb://h/d"),
        ({"url": "mysql://h/d", "kinds": ONE}, "no driver for mysql+aiomysql://h/d: No module"),
        ({"url": "sqlite://", "kinds": {}}, "kinds: Dictionary should have at least 1 item"),
        ({"url": "sqlite://", "kinds": {"a": {"query": " "}}}, "kinds.a.query: String should"),
        (
            {"url": "sqlite://", "kinds": {"a": {"query": "SELECT 1", "size": 5}}},
            "kinds.a.size: Extra",
        ),
        (
            {"url": "sqlite://", "pageSize": 0, "kinds": ONE},
            "pageSize: Input should be greater than 0",
        ),
    ],
)
def test_mistakes_are_config_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        SqlConfig.parse(data)


@pytest.mark.parametrize("password", ["s3cr@tHost", "p@ss:word99"])
def test_a_password_that_breaks_the_url_is_refused_without_showing_it(password: str) -> None:
    data = {"url": f"postgresql://catalog:{password}@db:5432/inventory", "kinds": ONE}
    with pytest.raises(ConfigError, match="percent-encoded") as refused:
        SqlConfig.parse(data)
    assert password not in str(refused.value) and "tHost" not in str(refused.value)
    assert "word99" not in str(refused.value)


def test_a_password_given_apart_from_the_url() -> None:
    config = SqlConfig.parse(
        {"url": "postgresql://catalog@db:5432/inventory", "password": "p@ss:w/rd", "kinds": ONE}
    )
    url = config.engine_url
    assert (url.username, url.password, url.host, url.database) == (
        "catalog", "p@ss:w/rd", "db", "inventory",
    )  # fmt: skip
    assert "p@ss" not in repr(config)


def test_missing_file_env_and_variables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SHOAL_SQL_CONFIG is not set"):
        SqlConfig.from_env({})
    with pytest.raises(ConfigError, match="cannot read the sql config"):
        SqlConfig.from_yaml(tmp_path / "missing.yaml")
    path = _write(tmp_path, "url: postgresql://u:${NOPE}@h/d\nkinds: {a: {query: SELECT 1}}\n")
    with pytest.raises(ConfigError, match="NOPE is not set"):
        SqlConfig.from_yaml(path, {})


def test_values_become_json() -> None:
    moment = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert json_value(Decimal("12")) == 12
    assert isinstance(json_value(Decimal("12")), int)
    assert json_value(Decimal("12.50")) == 12.5
    assert json_value(Decimal("NaN")) is None
    assert json_value(float("inf")) is None
    assert json_value(moment) == "2024-05-01T12:30:00+00:00"
    assert json_value(datetime(2024, 5, 1)) == "2024-05-01T00:00:00"  # noqa: DTZ001 - naive stays naive
    assert json_value(date(2024, 5, 1)) == "2024-05-01"
    assert json_value(time(8, 15)) == "08:15:00"
    assert json_value(timedelta(minutes=2)) == 120.0
    assert json_value(UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert json_value(memoryview(b"\x00\xff")) == "AP8="
    assert json_value(ip_address("10.0.0.1")) == "10.0.0.1"
    assert json_value({"a": [Decimal(1), (moment,)]}) == {"a": [1, ["2024-05-01T12:30:00+00:00"]]}
    assert json_row({"id": 1, "tags": None}) == {"id": 1, "tags": None}


def test_default_mapping_maps_rows_and_rejects_rows_without_identity() -> None:
    config = SqlConfig.parse({"url": "sqlite://", "kinds": {"service": {"query": "SELECT 1"}}})
    mapping = create_integration(config).default_mapping
    assert mapping is not None
    resource = parse_mapping_config(mapping).resources[0]
    mapped = compile_resource(resource).map_batch(
        [{"id": 7, "name": "payments"}, {"key": "k-1"}, {"owner": "team-a"}]
    )
    assert [(e["identifier"], e["title"], e["blueprint"]) for e in mapped.entities] == [
        ("service:7", "payments", "sqlRow"),
        ("service:k-1", "k-1", "sqlRow"),
    ]
    assert mapped.entities[0]["properties"] == {
        "kind": "service",
        "data": {"id": 7, "name": "payments"},
    }
    assert [error.field for error in mapped.errors] == ["identifier"]  # never a silent drop
    assert [b["identifier"] for b in load_default_blueprints()] == ["sqlRow"]


def test_the_documented_example_is_valid() -> None:
    docs = Path(__file__).parents[3] / "docs" / "integrations" / "sql.md"
    example = docs.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    config = SqlConfig.parse(expand_env(yaml.safe_load(example), {"DB_PASSWORD": "pw"}))
    assert list(config.kinds) == ["service", "team"]
    assert config.kinds["service"].params == {"retired": False}
    assert config.page_size_of("service") == 500
