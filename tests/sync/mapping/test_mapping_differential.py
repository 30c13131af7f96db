"""The compiler must map exactly like the naive per-field reference: same entities, same errors.

Every expression of the corpus runs over every item of the corpus, alone (so each error is
seen) and all together in one resource (so the fused program, its slots and the first-error
order are exercised), under both field-error policies.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shoal.errors import ConfigError
from shoal.sync.mapping import (
    FieldErrorPolicy,
    ReferenceMapper,
    ResourceConfig,
    compile_resource,
)
from tests.sync.mapping.mapping_helpers import POLICIES, assert_engines_agree, resource

ITEMS: list[Any] = [
    {},
    {"a": None},
    {"a": "str", "b": 1},
    {"a": {"b": {"c": 1}}, "x": [{"y": 1}, {"y": "two"}, {}], "n": 1.0, "s": "Hello World"},
    {"a": [1, 2, 3], "b": "1", "n": -0.0, "s": ""},
    {"a": {"b": "x", "c": [None, False, 0]}, "x": [], "n": 2.5, "s": "a,b,,c"},
    {"a": {"b": None}, "x": [{"y": None}], "n": 1e300, "s": "ÉCOLE ünïcode ☃"},
    {"a": True, "b": False, "x": {"y": 1}, "n": 2**60, "s": "x"},
    {"a": 0, "b": [], "x": "not-a-list", "n": 2**53 + 1, "s": None},
    {"a-b": 1, "a b": {"c d": 2}, "id": 42, "n": 12345678901234567890, "s": 'with "quotes"'},
    {"a": {"b": {"c": {"d": [1, {"e": "deep"}]}}}, "x": [[1, 2], [3]], "n": 0.1, "s": "x\ny"},
    {"a": 1.5, "b": {"a": 1}, "x": [{"y": {"z": 1}}, {"y": [1]}], "n": -7, "s": "MiXeD"},
    {"a": "2024-01-02T03:04:05.123Z", "b": "a|b|c", "x": [{"y": 3}], "n": 2**70, "s": "1"},
]

EXPRESSIONS: list[str] = [
    # constants (computed once by libjq)
    '"x"',
    "'single quoted'",
    "42",
    "1.0",
    "-2",
    "1e3",
    "true",
    "false",
    "null",
    '"\\u00e9\\n"',
    # plain paths (native getters)
    ".",
    ".a",
    ".a.b",
    ".a.b.c",
    ".a.b.c.d[1].e",
    ".a[0]",
    ".a[-1]",
    ".a[-4]",
    ".a[5]",
    '.["a-b"]',
    '."a b"',
    '."a b"."c d"',
    '.a["b"]',
    ".a.[0]",
    ".x[0].y",
    ".x[-1].y",
    ".a?.b",
    ".a.b?",
    ".a?.b?.c",
    ".x[0]?",
    ".missing.deeper",
    ".n",
    ".s",
    # path + trivial operator
    ".a // null",
    '.a // "default"',
    ".b // .a",
    ".id | tostring",
    ".a | tostring",
    ".n | tostring",
    ".a | tojson",
    ".n + 1",
    ".n | floor",
    # the rest (fused jq)
    "empty",
    ".x[]",
    ".x[] | .y",
    "[.x[] | .y]",
    "[.x[]? | .y?]",
    "first(.x[]?)",
    'error("boom")',
    "error(null)",
    "error({})",
    '.a | error("x: \\(.)")',
    'if .a then "yes" else "no" end',
    'if .a == null then null elif (.a | type) == "object" then .a.b else .a end',
    '"\\(.a)-\\(.b)"',
    '"\\(.id)"',
    ".x | length",
    ".a | length",
    ".s | ascii_downcase",
    ".s | ascii_upcase",
    '.s | split(",")',
    '.s | split(" ") | .[0]',
    '.b | split("|") | join("-")',
    '[.x[]? | .y | tostring] | join(",")',
    "keys",
    ".a | keys",
    'has("a")',
    '.a | has("b")',
    "to_entries | map(.key)",
    "select(.a != null) | .a",
    "select(.n > 1)",
    ".x | map(.y)",
    ".x | map(select(.y != null)) | length",
    "[.[] | numbers] | add",
    ". as $r | $r.a",
    "def f: .a; f",
    ".a # trailing comment",
    "(.s | tostring) # a comment that ends in a backslash \\",
    "# leading comment\n.a",
    "reduce (.x[]? // empty) as $i (0; . + 1)",
    '.s | test("o")',
    '.s | ltrimstr("He")',
    'getpath(["a", "b"])',
    "[paths] | length",
    ".a | type",
    ".n | type",
    "[.a, .b] | map(type)",
    "{a, b}",
    "[.a, .n]",
    "limit(0; .a)",
    ".a | not",
    '(.a | tostring) + "-" + (.b | tostring)',
    ".a.b + 1",
    "[.x[]?.y] | unique",
    "$__loc__",
    'try error("x") catch .',
    ".a |= 1",
    "to_entries[0].value",
    "env | type",
]


@pytest.mark.parametrize("on_field_error", POLICIES)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_property_expression(expression: str, on_field_error: FieldErrorPolicy) -> None:
    assert_engines_agree(resource({"v": expression}), ITEMS, on_field_error)


@pytest.mark.parametrize("on_field_error", POLICIES)
def test_all_expressions_in_one_resource(on_field_error: FieldErrorPolicy) -> None:
    properties = {f"p{i}": expression for i, expression in enumerate(EXPRESSIONS)}
    batch = assert_engines_agree(resource(properties), ITEMS, on_field_error)
    if on_field_error == "null":
        assert len(batch.entities) == len(ITEMS)


@pytest.mark.parametrize("on_field_error", POLICIES)
def test_only_fused_leaves_in_one_resource(on_field_error: FieldErrorPolicy) -> None:
    fused = [
        e for e in EXPRESSIONS if compile_resource(resource({"v": e})).plan["properties.v"] == "jq"
    ]
    properties = {f"p{i}": expression for i, expression in enumerate(fused)}
    assert_engines_agree(resource(properties), ITEMS, on_field_error)


# Every jq leaf of these reads one plain path first, so libjq is fed only those sub-trees.
PROJECTED = {
    "a": ".a | tostring",
    "b": ".x | map(.y?)",
    "c": '.s | split(" ")',
    "d": ".a.b | tojson",
    "e": ".n | tojson",
    "f": ".x | length",
    "g": ".a | error",
}


@pytest.mark.parametrize("on_field_error", POLICIES)
def test_projected_leaves(on_field_error: FieldErrorPolicy) -> None:
    assert_engines_agree(resource(PROJECTED), ITEMS, on_field_error)
    assert_engines_agree(resource(PROJECTED, selector=".n != 1"), ITEMS, on_field_error)


@pytest.mark.parametrize(
    "identifier",
    [".id", ".a", ".a.b", ".s", ".n", ".id | tostring", ".s | ascii_downcase", "empty", ".b"],
)
def test_identifier_expressions(identifier: str) -> None:
    batch = assert_engines_agree(resource({"n": ".n"}, identifier=identifier), ITEMS)
    assert all(entity["identifier"] for entity in batch.entities)


@pytest.mark.parametrize("blueprint", ['"svc"', ".s", ".s | ascii_downcase", '""', "null"])
def test_blueprint_expressions(blueprint: str) -> None:
    assert_engines_agree(resource({"n": ".n"}, blueprint=blueprint), ITEMS)


SELECTORS = [
    "true",
    "false",
    "null",
    '"yes"',
    "1",
    ".a",
    ".b",
    ".a == null",
    ".n > 1",
    '.s | test("o")',
    "empty",
    ".a.b",
    "(.x | length) > 0",
    'error("nope")',
    ".x[]? | .y? == 1",
    '.a | type == "object"',
]


@pytest.mark.parametrize("selector", SELECTORS)
@pytest.mark.parametrize(
    "properties",
    [
        {"v": ".a"},
        {"v": ".a | tostring", "w": ".x | length"},
        {"v": "[.x[]? | .y]", "w": ".n"},
    ],
)
def test_selectors(selector: str, properties: dict[str, str]) -> None:
    assert_engines_agree(resource(properties, selector=selector), ITEMS)


def test_optional_fields_and_explicit_nulls() -> None:
    config = resource(
        None, title=".s", icon=None, team=".a | tostring", relations={"r": ".b", "q": ".x"}
    )
    batch = assert_engines_agree(config, ITEMS)
    assert set(batch.entities[0]) == {
        "identifier",
        "blueprint",
        "title",
        "icon",
        "team",
        "relations",
    }
    assert batch.entities[0]["icon"] is None


def test_search_queries() -> None:
    query = {
        "combinator": '"and"',
        "rules": [
            {"property": '"$identifier"', "operator": '"="', "value": ".a.b"},
            {"combinator": "or", "rules": [{"property": "'x'", "operator": '"in"', "value": ".x"}]},
            {"property": '"n"', "operator": '"="', "value": ".n | tostring"},
        ],
    }
    config = resource({"v": ".n"}, identifier=query, team=query, relations={"owner": query})
    for policy in POLICIES:
        batch = assert_engines_agree(config, ITEMS, policy)
    assert batch.entities[3]["identifier"]["rules"][1] == {
        "combinator": "or",
        "rules": [{"property": "x", "operator": "in", "value": [{"y": 1}, {"y": "two"}, {}]}],
    }


ARGOCD_PARENT = {
    "metadata": {"uid": "u1", "name": "app"},
    "status": {"history": [{"id": 1, "revision": "abc"}, {"id": 2.0, "revision": None}]},
    "n": 1.0,
}
EXPANDED_ITEMS: list[Any] = [
    ARGOCD_PARENT,
    {"metadata": {"uid": "u2"}, "status": {"history": []}},
    {"metadata": {"uid": "u3"}, "status": {}},
    {"metadata": {"uid": "u4"}, "status": {"history": "oops"}},
    {"metadata": {"uid": "u5"}, "status": "oops"},
    {"metadata": {"uid": "u6"}, "status": {"history": [{"id": "x"}], "other": 1}},
    "not an object",
    None,
    {"metadata": {"uid": "u7"}, "item": "shadowed", "status": {"history": [{"id": 3}]}},
]


def argocd_resource(items_to_parse: str, name: str, transform: bool) -> ResourceConfig:
    """Ocean's argocd deployment-history resource, with the element named ``name``."""
    element = f".{name}"
    return resource(
        {
            "revision": f"{element}.revision",
            "id": f"{element}.id",
            "parent": ".status",
            "n": ".n",
            "whole": ". | tojson",
        },
        identifier=f'.metadata.uid + "-" + ({element}.id | tostring)',
        title=".metadata.name",
        blueprint='"argocdDeploymentHistory"',
        relations={"application": ".metadata.uid"},
        selector=f'{element}.id != 2 or (.metadata.uid == "u1")',
        port={
            "itemsToParse": items_to_parse,
            "itemsToParseName": name,
            "itemsToParseTopLevelTransform": transform,
        },
    )


@pytest.mark.parametrize("top_level_transform", [True, False])
@pytest.mark.parametrize(
    "items_to_parse",
    [
        ".status.history // []",
        ".status.history",
        "(.status.history)",
        ".status.history | map(select(.id != 2))",
        "[.status.history[]?]",
        ".status | .history",
    ],
)
@pytest.mark.parametrize("name", ["item", "entry"])
def test_items_to_parse(items_to_parse: str, top_level_transform: bool, name: str) -> None:
    config = argocd_resource(items_to_parse, name, top_level_transform)
    if "[.status" in items_to_parse and top_level_transform:
        # Ocean's heuristic finds no key to remove from the parent: both engines refuse.
        with pytest.raises(ConfigError):
            compile_resource(config)
        with pytest.raises(ConfigError):
            ReferenceMapper(config)
        return
    batch = assert_engines_agree(config, EXPANDED_ITEMS)
    assert batch.entities


def test_items_to_parse_errors_are_in_input_order() -> None:
    config = resource(
        {"v": ".item | tostring"},
        identifier='.item.id | if . == "x" then error("bad id") else tostring end',
        port={"itemsToParse": ".status.history // []"},
    )
    batch = assert_engines_agree(config, EXPANDED_ITEMS)
    order = [(e.index, -1 if e.element is None else e.element) for e in batch.errors]
    assert order == sorted(order)
    assert {e.field for e in batch.errors} == {"itemsToParse", "identifier"}


def test_python_values_json_dumps_accepts() -> None:
    # What json.dumps (jq.py's input path) accepts, with Ocean's date-to-ISO retry: tuples,
    # non-string keys, dates. (Items json.dumps refuses altogether are outside the contract.)
    items = [
        {"a": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "b": dt.date(2024, 1, 2), "n": 1},
        {"a": (1, 2), "b": {1: "int key", "2": "str key", None: "null key"}, "n": 2},
        {"a": {"b": dt.time(1, 2)}, "b": {True: 1, 2.5: "float key"}, "n": 3.0},
    ]
    properties = {
        "a": ".a",
        "a0": ".a[0]",
        "b": ".b",
        "b1": '.b["1"]',
        "b1?": '.b."1"?',
        "b2?": '.b["2"]?.x?',
        "t": ".a | tostring",
        "j": ".b | tojson",
        "n": ".n + 1",
    }
    for policy in POLICIES:
        assert_engines_agree(resource(properties), items, policy)
