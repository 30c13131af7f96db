"""The http integration's YAML config: validation, ${ENV} substitution, the default mapping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from shoal.errors import ConfigError
from shoal.integrations._config_file import expand_env
from shoal.integrations.http import HttpConfig, create_integration, load_default_blueprints
from shoal.integrations.http.config import (
    BasicAuth,
    BearerAuth,
    CursorPagination,
    NoAuth,
    NoPagination,
    PagePagination,
)
from shoal.sync.mapping import parse_mapping_config

YAML = """
baseUrl: https://api.example.com/v2
auth:
  type: bearer
  token: ${API_TOKEN}
headers: {User-Agent: "shoal ($${literal})"}
timeout: 5
rateLimit: {requestsPerSecond: 2, maxRetryAfter: 10}
retry: {maxRetries: 2, backoff: 0.5}
kinds:
  service:
    path: /services
    params: {state: active, limit: 50}
    itemsPath: .data
    pagination: {type: page, sizeParam: limit, size: 50}
  team:
    path: /teams
    pagination: {type: cursor, cursorPath: .meta.next}
  tag:
    path: /tags
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "http.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_config(tmp_path: Path) -> None:
    path = _write(tmp_path, YAML)
    config = HttpConfig.from_env({"SHOAL_HTTP_CONFIG": str(path), "API_TOKEN": "t0k"})
    assert config.base_url == "https://api.example.com/v2"
    assert isinstance(config.auth, BearerAuth)
    assert config.auth.token.get_secret_value() == "t0k"
    assert "t0k" not in repr(config)  # secrets stay out of logs and error messages
    assert config.headers == {"User-Agent": "shoal (${literal})"}
    assert (config.timeout, config.rate_limit.requests_per_second, config.retry.max_retries) == (
        5,
        2,
        2,
    )
    service = config.kinds["service"]
    assert service.params == {"state": "active", "limit": 50}
    assert service.pagination == PagePagination(type="page", size_param="limit", size=50)
    assert isinstance(config.kinds["team"].pagination, CursorPagination)
    assert config.kinds["tag"].items_path == "."
    assert isinstance(config.kinds["tag"].pagination, NoPagination)


def test_defaults() -> None:
    config = HttpConfig.parse({"baseUrl": "http://x", "kinds": {"a": {"path": "/a"}}})
    assert isinstance(config.auth, NoAuth)
    assert (config.timeout, config.retry.max_retries, config.rate_limit.max_retry_after) == (
        30,
        4,
        120,
    )


def test_basic_auth_password_from_env() -> None:
    data = {
        "baseUrl": "http://x",
        "auth": {"type": "basic", "username": "robot", "password": "${PASS}"},
        "kinds": {"a": {"path": "/a"}},
    }
    config = HttpConfig.parse(expand_env(data, {"PASS": "p"}))
    assert isinstance(config.auth, BasicAuth)
    assert config.auth.password.get_secret_value() == "p"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kinds: {a: {path: /a}}", "baseUrl: Field required"),
        ("baseUrl: ftp://x\nkinds: {a: {path: /a}}", "baseUrl: String should match"),
        ("baseUrl: http://x\nkinds: {}", "kinds: Dictionary should have at least 1 item"),
        (
            "baseUrl: http://x\nkinds: {a: {path: /a, itemPath: .x}}",
            "kinds.a.itemPath: Extra inputs",
        ),
        ("baseUrl: http://x\nkinds: {a: {path: /a, itemsPath: '.['}}", "not a valid jq expression"),
        ("baseUrl: http://x\nkinds: {'a b': {path: /a}}", "kinds.a b.[key]: String should match"),
        (
            "baseUrl: http://x\nauth: {type: oauth}\nkinds: {a: {path: /a}}",
            "auth: Input tag 'oauth'",
        ),
        (
            "baseUrl: http://x\nkinds: {a: {path: /a, pagination: {type: cursor}}}",
            "kinds.a.pagination.cursor.cursorPath: Field required",
        ),
        ("baseUrl: http://x\nauth: {type: bearer, token: '${NOPE}'}\nkinds: {}", "NOPE is not set"),
        ("baseUrl: [unclosed", "not valid YAML"),
        (
            "baseUrl: http://x\nkinds: {a: {path: /a, itemsPath: '[.d[] | select(.on)]',"
            " pagination: {type: page}}}",
            "kinds.a: Value error, itemsPath must select a page's items, not filter them",
        ),
    ],
)
def test_mistakes_are_config_errors_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        HttpConfig.from_yaml(_write(tmp_path, text), environ={})


def test_missing_env_var_and_file() -> None:
    with pytest.raises(ConfigError, match="SHOAL_HTTP_CONFIG is not set"):
        HttpConfig.from_env({})
    with pytest.raises(ConfigError, match="cannot read the http config"):
        HttpConfig.from_env({"SHOAL_HTTP_CONFIG": "/nonexistent/http.yaml"})


def test_env_substitution_is_on_values_only() -> None:
    data = {"${KEY}": ["a ${X}", {"b": "$$${X}"}], "n": 1}
    assert expand_env(data, {"X": "x: [1]", "KEY": "k"}) == {
        "${KEY}": ["a x: [1]", {"b": "$x: [1]"}],
        "n": 1,
    }


def test_default_mapping_has_one_resource_per_kind(tmp_path: Path) -> None:
    config = HttpConfig.from_yaml(_write(tmp_path, YAML), {"API_TOKEN": "t"})
    integration = create_integration(config)
    assert integration.kinds == ["service", "team", "tag"]
    mapping = integration.default_mapping
    assert mapping is not None
    parsed = parse_mapping_config(mapping)
    assert [resource.kind for resource in parsed.resources] == ["service", "team", "tag"]
    team = mapping["resources"][1]["port"]["entity"]["mappings"]
    assert team["identifier"] == 'first((.id, .uuid, .key, .name) | values | "team:\\(.)")'
    assert team["properties"] == {"kind": '"team"', "data": "."}
    assert [b["identifier"] for b in load_default_blueprints()] == ["httpItem"]


def test_the_documented_example_is_valid() -> None:
    docs = Path(__file__).parents[3] / "docs" / "integrations" / "http.md"
    example = docs.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    config = HttpConfig.parse(expand_env(yaml.safe_load(example), {"PAGERDUTY_TOKEN": "t"}))
    assert list(config.kinds) == ["service", "team"]
    assert config.kinds["service"].params == {"include[]": "teams"}
