"""What the bundled integrations share: YAML config files and packaged default files."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from shoal.errors import ConfigError
from shoal.integrations._bundled import BundledPackage, expand_kind
from shoal.integrations._config_file import ConfigModel, KindName, YamlConfig, expand_env


class _Kind(ConfigModel):
    page_size: int = 1


class _Config(YamlConfig):
    config_name: ClassVar[str] = "demo config"
    config_env: ClassVar[str] = "DEMO_CONFIG"

    kinds: dict[KindName, _Kind]


def test_expand_env_walks_values_not_keys() -> None:
    data = {"${A}": ["${A}", "$${A}", 1], "b": {"c": "x${A}y"}}
    assert expand_env(data, {"A": "a"}) == {"${A}": ["a", "${A}", 1], "b": {"c": "xay"}}
    with pytest.raises(
        ConfigError, match=r"^f\.yaml\.b\[1\]: environment variable NOPE is not set$"
    ):
        expand_env({"b": ["ok", "${NOPE}"]}, {}, "f.yaml")


def test_yaml_config(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text("kinds: {a: {pageSize: '${SIZE}'}}\n", encoding="utf-8")
    config = _Config.from_env({"DEMO_CONFIG": f" {path} ", "SIZE": "5"})
    assert config.kinds["a"].page_size == 5
    with pytest.raises(
        ConfigError, match=r"^DEMO_CONFIG is not set: give the path of the demo config YAML$"
    ):
        _Config.from_env({})
    with pytest.raises(ConfigError, match=r"^cannot read the demo config "):
        _Config.from_yaml(tmp_path / "missing.yaml", {})
    path.write_text("kinds:\n  a: [\n  b: 1\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"^the demo config .* is not valid YAML: line 4, "
    ) as bad:
        _Config.from_yaml(path, {})
    assert "\n" not in str(bad.value)  # one line, without PyYAML's excerpt of the file
    with pytest.raises(ConfigError) as caught:
        _Config.parse({"kinds": {"-a": {"pageSize": "x", "extra": 1}}})
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("demo config: kinds.-a.[key]: String should match pattern")
    assert "kinds.-a.pageSize: Input should be a valid integer" in str(caught.value)
    assert "kinds.-a.extra: Extra inputs are not permitted" in str(caught.value)
    with pytest.raises(ConfigError, match=r"^here: \(top\): "):
        _Config.parse(None, "here")


def test_bundled_package(tmp_path: Path) -> None:
    package = BundledPackage("demo", tmp_path)
    (tmp_path / "port-app-config.yaml").write_text(
        "resources:\n  - {kind: '@KIND@', query: '\"@KIND@\" == .k', n: 1}\n", encoding="utf-8"
    )
    (tmp_path / "blueprints.json").write_text('[{"identifier": "x"}]', encoding="utf-8")
    assert package.load_kind_mapping(["a", "b"])["resources"] == [
        {"kind": "a", "query": '"a" == .k', "n": 1},
        {"kind": "b", "query": '"b" == .k', "n": 1},
    ]
    assert package.load_mapping()["resources"][0]["kind"] == "@KIND@"
    assert package.load_blueprints() == [{"identifier": "x"}]
    assert expand_kind({"@KIND@": ["@KIND@"]}, "k") == {"@KIND@": ["k"]}

    (tmp_path / "port-app-config.yaml").write_text("resources: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="of the demo integration is not a one-resource template"):
        package.load_kind_mapping(["a"])
    (tmp_path / "port-app-config.yaml").write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="of the demo integration is not a mapping"):
        package.load_mapping()
    (tmp_path / "blueprints.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(ConfigError, match="of the demo integration is not a list of objects"):
        package.load_blueprints()
