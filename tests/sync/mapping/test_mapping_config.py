"""Parsing the mapping config: defaults, extension keys, round trips and error messages."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shoal.errors import ConfigError
from shoal.sync.mapping import MappingConfig, SearchQuery, parse_mapping_config

GITHUB_STYLE = """
deleteDependentEntities: true
createMissingRelatedEntities: true
repositoryType: 'all'
resources:
  - kind: repository
    selector:
      query: 'true'
      includedFiles:
        - README.md
    port:
      entity:
        mappings:
          identifier: .name
          title: .name
          blueprint: '"githubRepository"'
          properties:
            readme: .__includedFiles["README.md"]
            visibility: if .private then "private" else "public" end
          relations:
            organization: .owner.login
  - kind: incidents
    selector:
      query: .status == "triggered"
      apiQueryParams:
        include: [assignees]
    port:
      itemsToParse: .assignments // []
      itemsToParseName: assignment
      entity:
        mappings:
          identifier: .id | tostring
          blueprint: '"pagerdutyIncident"'
          team:
            combinator: '"and"'
            rules:
              - property: '"handle"'
                operator: '"="'
                value: .attributes.schema.team
"""


def minimal(**mappings: Any) -> dict[str, Any]:
    """A one-resource config document with the given mappings (or the least valid ones)."""
    mappings = mappings or {"identifier": ".id", "blueprint": '"b"'}
    return {"resources": [{"kind": "thing", "port": {"entity": {"mappings": mappings}}}]}


def test_a_real_config_parses_with_ocean_defaults() -> None:
    config = parse_mapping_config(yaml.safe_load(GITHUB_STYLE))
    assert config.delete_dependent_entities is True
    assert config.create_missing_related_entities is True
    assert config.enable_merge_entity is True
    assert config.entity_deletion_threshold == 0.9
    repository, incidents = config.resources
    assert repository.selector.query == "true"
    assert repository.port.items_to_parse is None
    assert repository.port.items_to_parse_name == "item"
    assert repository.port.items_to_parse_top_level_transform is True
    assert incidents.port.items_to_parse == ".assignments // []"
    assert incidents.port.items_to_parse_name == "assignment"
    assert isinstance(incidents.port.entity.mappings.team, SearchQuery)


def test_extension_keys_are_kept_and_round_trip() -> None:
    document = yaml.safe_load(GITHUB_STYLE)
    config = parse_mapping_config(document)
    assert config.model_extra == {"repositoryType": "all"}
    assert config.resources[0].selector.model_extra == {"includedFiles": ["README.md"]}
    assert config.resources[1].selector.model_extra == {
        "apiQueryParams": {"include": ["assignees"]}
    }
    assert config.to_json() == document
    assert parse_mapping_config(config.to_json()) == config


def test_defaults_stay_implicit_in_to_json() -> None:
    config = parse_mapping_config(minimal())
    assert config.to_json() == minimal()
    assert config.resources[0].selector.query == "true"


def test_yaml_scalars_are_accepted_as_jq() -> None:
    config = parse_mapping_config(
        {
            "resources": [
                {
                    "kind": "k",
                    "selector": {"query": True},
                    "port": {
                        "entity": {
                            "mappings": {
                                "identifier": ".id",
                                "blueprint": '"b"',
                                "properties": {"n": 3, "f": 1.5, "off": False},
                            }
                        }
                    },
                }
            ]
        }
    )
    resource = config.resources[0]
    assert resource.selector.query == "true"
    assert resource.port.entity.mappings.properties == {"n": "3", "f": "1.5", "off": "false"}


def test_leaf_tree_has_only_the_keys_the_config_sets() -> None:
    config = parse_mapping_config(
        minimal(identifier=".id", blueprint='"b"', title=None, properties={"a": ".a"}, x="y")
    )
    tree = config.resources[0].port.entity.mappings.leaf_tree()
    assert tree == {
        "identifier": ".id",
        "title": None,
        "blueprint": '"b"',
        "properties": {"a": ".a"},
    }
    assert list(tree) == ["identifier", "title", "blueprint", "properties"]  # Ocean's order


def test_search_query_tree() -> None:
    rule = {"property": '"a"', "operator": '"="', "value": ".a"}
    nested: dict[str, Any] = {"combinator": "and", "rules": []}
    query = {"combinator": "or", "rules": [rule | {"note": "extra"}, nested]}
    config = parse_mapping_config(minimal(identifier=query, blueprint='"b"'))
    tree = config.resources[0].port.entity.mappings.leaf_tree()
    assert tree["identifier"] == {
        "combinator": "or",
        "rules": [rule, nested],  # the extra key is not a leaf
    }


def test_ignored_keys_lists_likely_typos() -> None:
    document = yaml.safe_load(GITHUB_STYLE)
    document["resources"][0]["port"]["entity"]["relations"] = {"team": ".team"}
    document["resources"][0]["port"]["entity"]["mappings"]["relation"] = {"x": ".x"}
    config = parse_mapping_config(document)
    assert config.ignored_keys() == [
        "resources[0].port.entity.relations",
        "resources[0].port.entity.mappings.relation",
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "expected a JSON object, got list"),
        ({"resources": {}}, "resources: Input should be a valid list"),
        ({"resources": [{"port": {}}]}, "resources[0].kind: Field required"),
        ({"resources": [{"kind": "", "port": {}}]}, "resources[0].kind: String should have"),
        ({"resources": [{"kind": "k"}]}, "resources[0].port: Field required"),
        (
            {"resources": [{"kind": "k", "port": {"entity": {"mappings": {"identifier": ".id"}}}}]},
            "resources[0].port.entity.mappings.blueprint: Field required",
        ),
        (
            {"resources": [{"kind": "k", "port": {"entity": {"mappings": {"blueprint": "b"}}}}]},
            "resources[0].port.entity.mappings.identifier: Field required",
        ),
        (
            minimal(identifier={"rules": []}, blueprint='"b"'),
            "resources[0].port.entity.mappings.identifier.combinator: Field required",
        ),
        (
            minimal(identifier=".id", blueprint='"b"', relations={"r": {"combinator": '"and"'}}),
            "resources[0].port.entity.mappings.relations.r.rules: Field required",
        ),
        (
            minimal(
                identifier=".id",
                blueprint='"b"',
                team={"combinator": "and", "rules": [{"property": '"p"', "value": ".v"}]},
            ),
            "resources[0].port.entity.mappings.team.rules[0].operator: Field required",
        ),
        (
            minimal(identifier=".id", blueprint=["b"]),
            "resources[0].port.entity.mappings.blueprint: Input should be a valid string",
        ),
        (
            minimal(identifier=".id", blueprint='"b"', properties={"p": None}),
            "resources[0].port.entity.mappings.properties.p: Input should be a valid string",
        ),
        ({"entityDeletionThreshold": 1.5}, "entityDeletionThreshold: Input should be less than"),
        ({"entityDeletionThreshold": -0.1}, "entityDeletionThreshold: Input should be greater"),
        ({"deleteDependentEntities": "maybe"}, "deleteDependentEntities: Input should be a valid"),
    ],
)
def test_invalid_configs_raise_one_line_config_errors(document: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_mapping_config(document)
    message = str(caught.value)
    assert message.startswith("invalid mapping config: ")
    assert expected in message
    assert "\n" not in message


def test_many_errors_are_summarised() -> None:
    document: dict[str, Any] = {"resources": [{"port": {}} for _ in range(10)]}
    with pytest.raises(ConfigError, match=r"; and \d+ more$"):
        parse_mapping_config(document)


def test_empty_config_is_valid() -> None:
    assert parse_mapping_config({}) == MappingConfig()
