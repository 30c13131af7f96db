"""The fast property check must agree with the blueprint's jsonschema validator.

``compile_property_check`` spares most entity writes the jsonschema validator; it may only say
"valid" when the validator would. For the keywords it decides itself (type, enum, format) and
for those it hands to a per-property validator, it agrees exactly; ``$ref`` is always left to
the full validator.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings, strategies as st

from shoal.catalog.blueprints import compile_property_check, compile_validator, normalize_blueprint

SPECS: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": "number"},
    {"type": "integer"},
    {"type": "boolean"},
    {"type": "object"},
    {"type": "array"},
    {"type": "null"},
    {"type": ["string", "number"]},
    {"type": ["integer", "boolean", "null"]},
    {"type": "string", "enum": ["a", "b"]},
    {"type": ["number", "string"], "enum": ["1", "x"]},
    {"type": "number", "enum": ["a"]},
    {"enum": ["a", "b"]},
    {"enum": ["a", 1, True, None, [1]]},
    {"type": "string", "format": "email", "title": "Email"},
    {"type": "string", "format": "uuid"},
    {"type": "string", "format": "date-time", "enumColors": {"a": "red"}},
    {"type": "string", "minLength": 2},
    {"type": "string", "pattern": "^a"},
    {"type": "number", "minimum": 0, "maximum": 10},
    {"type": "array", "items": {"type": "string"}},
    {"type": "object", "properties": {"k": {"type": "integer"}}, "required": ["k"]},
    {"title": "anything", "description": "goes", "icon": "Blueprint"},
    {"const": "x"},
    {"anyOf": [{"type": "string"}, {"type": "integer"}]},
]

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["a", "b", "x", "1", "ab", "abc", "", "a@b"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["k", "j"]), inner, max_size=2)
    ),
    max_leaves=6,
)


@st.composite
def blueprints_and_properties(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    chosen = draw(st.lists(st.sampled_from(range(len(SPECS))), min_size=1, max_size=4))
    properties = {f"p{i}": SPECS[i] for i in chosen}
    required = draw(st.lists(st.sampled_from(sorted(properties)), unique=True, max_size=2))
    blueprint = normalize_blueprint(
        {"identifier": "bp", "schema": {"properties": properties, "required": required}}
    )
    names = st.sampled_from([*sorted(properties), "unknown"])
    values = draw(st.dictionaries(names, JSON_VALUES, max_size=5))
    return blueprint, values


@settings(max_examples=600, deadline=None)
@given(blueprints_and_properties())
def test_the_check_agrees_with_the_validator(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    blueprint, values = case
    assert compile_property_check(blueprint)(values) == compile_validator(blueprint).is_valid(
        values
    )


def test_refs_are_left_to_the_full_validator() -> None:
    blueprint = normalize_blueprint(
        {
            "identifier": "bp",
            "schema": {
                "properties": {"a": {"$ref": "#/definitions/s"}},
                "definitions": {"s": {"type": "string"}},
            },
        }
    )
    assert compile_property_check(blueprint)({"a": "x"}) is False
    assert compile_property_check(blueprint)({"a": None}) is True  # null: always allowed


def test_a_required_null_is_what_the_property_spec_says() -> None:
    for spec, valid in (({"type": "null"}, True), ({}, True), ({"type": "string"}, False)):
        blueprint = normalize_blueprint(
            {"identifier": "bp", "schema": {"properties": {"p": spec}, "required": ["p"]}}
        )
        assert compile_validator(blueprint).is_valid({"p": None}) is valid
        assert compile_property_check(blueprint)({"p": None}) is valid
        assert compile_property_check(blueprint)({}) is False
