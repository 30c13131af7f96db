"""The default mapping config and blueprints agree with each other and with the generator."""

from __future__ import annotations

import functools
from itertools import islice
from typing import Any

import jq
import jsonschema
import pytest

from shoal.integrations.fake import (
    KINDS,
    FakeSettings,
    generate_items,
    load_default_blueprints,
    load_default_mapping,
)
from shoal.types import JSONObject

SETTINGS = FakeSettings(persons=20_000, item_size=500, generation=3)


def _blueprints() -> dict[str, JSONObject]:
    return {blueprint["identifier"]: blueprint for blueprint in load_default_blueprints()}


def _resources() -> list[JSONObject]:
    resources: list[JSONObject] = load_default_mapping()["resources"]
    return resources


@functools.cache
def _compiled(expression: str) -> Any:
    return jq.compile(expression)


def _jq(expression: str, item: JSONObject) -> Any:
    return _compiled(expression).input_value(item).first()


def test_mapping_top_level_settings() -> None:
    mapping = load_default_mapping()
    assert mapping["deleteDependentEntities"] is True
    assert mapping["createMissingRelatedEntities"] is True
    assert mapping["enableMergeEntity"] is True
    assert mapping["entityDeletionThreshold"] == 0.9
    assert [resource["kind"] for resource in mapping["resources"]] == list(KINDS)
    for resource in mapping["resources"]:
        assert resource["selector"] == {"query": "true"}
        assert set(resource["port"]["entity"]["mappings"]) >= {"identifier", "title", "blueprint"}


def test_blueprints_follow_the_port_shape() -> None:
    blueprints = load_default_blueprints()
    assert [b["identifier"] for b in blueprints] == [
        "fakeDepartment",
        "fakeOffice",
        "fakeTeam",
        "fakeProject",
        "fakePerson",
    ]
    for blueprint in blueprints:
        assert set(blueprint) == {"identifier", "title", "icon", "schema", "relations"}
        assert blueprint["schema"]["required"] == []
        for relation in blueprint["relations"].values():
            assert set(relation) == {"title", "target", "required", "many"}
    person = _blueprints()["fakePerson"]
    assert person["schema"]["properties"]["email"] == {
        "type": "string",
        "format": "email",
        "title": "Email",
    }
    assert person["relations"]["department"]["target"] == "fakeDepartment"
    assert person["relations"]["department"]["many"] is False
    assert person["relations"]["projects"]["many"] is True


def test_every_relation_target_exists() -> None:
    blueprints = _blueprints()
    for blueprint in blueprints.values():
        for relation in blueprint["relations"].values():
            assert relation["target"] in blueprints


def test_every_mapped_property_and_relation_exists_in_its_blueprint() -> None:
    blueprints = _blueprints()
    for resource in _resources():
        mappings = resource["port"]["entity"]["mappings"]
        blueprint = blueprints[_jq(mappings["blueprint"], {})]
        assert set(mappings["properties"]) <= set(blueprint["schema"]["properties"])
        assert set(mappings["relations"]) <= set(blueprint["relations"])


def test_mapping_uses_non_trivial_jq() -> None:
    leaves = [
        expression
        for resource in _resources()
        for expression in resource["port"]["entity"]["mappings"]["properties"].values()
    ]
    assert any("//" in leaf for leaf in leaves)
    assert any("\\(" in leaf for leaf in leaves)


@pytest.mark.parametrize("resource", _resources(), ids=lambda resource: resource["kind"])
def test_mapped_items_validate_against_their_blueprint(resource: JSONObject) -> None:
    """Map real generated items with libjq: types match the schema, relations resolve."""
    blueprints = _blueprints()
    mappings = resource["port"]["entity"]["mappings"]
    blueprint = blueprints[_jq(mappings["blueprint"], {})]
    schema = {"type": "object", **blueprint["schema"], "additionalProperties": False}
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    ids_by_blueprint = {
        _jq(other["port"]["entity"]["mappings"]["blueprint"], {}): {
            item["id"] for item in generate_items(SETTINGS, other["kind"])
        }
        for other in _resources()
    }
    seen_nulls: set[str] = set()
    for item in islice(generate_items(SETTINGS, resource["kind"]), 1000):
        identifier = _jq(mappings["identifier"], item)
        assert isinstance(identifier, str)
        assert identifier
        assert isinstance(_jq(mappings["title"], item), str)
        properties = {name: _jq(expr, item) for name, expr in mappings["properties"].items()}
        seen_nulls.update(name for name, value in properties.items() if value is None)
        # Null means "no value": optional properties may be null, the rest must validate.
        present = {name: value for name, value in properties.items() if value is not None}
        validator.validate(present)
        for name, expression in mappings["relations"].items():
            relation = blueprint["relations"][name]
            value = _jq(expression, item)
            targets = value if relation["many"] else [value]
            assert isinstance(targets, list)
            assert set(targets) <= ids_by_blueprint[relation["target"]]
    if resource["kind"] == "fake-person":
        assert "phone" in seen_nulls
