"""The compiler's contract beyond "equals the reference": plans, errors, and costs."""

from __future__ import annotations

import threading
from typing import Any

import jq
import pytest

from shoal.errors import ConfigError, MappingError
from shoal.sync.mapping import ItemError, ReferenceMapper, _jq, compile_resource
from shoal.sync.mapping.compiler import _FusedLeaf, _FusedProgram
from tests.sync.mapping.mapping_helpers import POLICIES, assert_engines_agree, resource

PAGERDUTY_LIKE = resource(
    {
        "status": ".status",
        "url": ".html_url",
        "assignees": ".assignments | map(.assignee.email)",
        "priority": "if .priority != null then .priority.summary else null end",
        "trigger": ".first_trigger_log_entry.agent.summary",
    },
    identifier=".id | tostring",
    title=".title",
    blueprint='"pagerdutyIncident"',
    relations={"service": ".service.id"},
)


def incident(number: int) -> dict[str, Any]:
    return {
        "id": f"P{number}",
        "title": f"Incident {number}",
        "status": "triggered",
        "html_url": f"https://example.pagerduty.com/incidents/P{number}",
        "assignments": [{"assignee": {"email": f"user{number}@example.com"}}],
        "priority": {"summary": "P1"} if number % 2 else None,
        "first_trigger_log_entry": {"agent": {"summary": "monitor"}},
        "service": {"id": "S1"},
    }


def test_plan_classifies_every_leaf() -> None:
    compiled = compile_resource(PAGERDUTY_LIKE)
    assert compiled.plan == {
        "selector": "constant",
        "identifier": "jq",
        "title": "path",
        "blueprint": "constant",
        "properties.status": "path",
        "properties.url": "path",
        "properties.assignees": "jq",
        "properties.priority": "jq",
        "properties.trigger": "path",
        "relations.service": "path",
    }
    assert compiled.kind == "thing"


def test_a_clean_batch_makes_no_per_field_libjq_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = compile_resource(PAGERDUTY_LIKE)
    calls: list[str] = []
    original = _jq.first_output

    def counting(program: Any, value: Any) -> Any:
        calls.append(program.program_string)
        return original(program, value)

    monkeypatch.setattr(_jq, "first_output", counting)
    items = [incident(n) for n in range(1200)]  # more than one fused chunk
    batch = compiled.map_batch(items)
    assert calls == []
    assert len(batch.entities) == 1200
    assert batch.entities[1] == {
        "identifier": "P1",
        "title": "Incident 1",
        "blueprint": "pagerdutyIncident",
        "properties": {
            "status": "triggered",
            "url": "https://example.pagerduty.com/incidents/P1",
            "assignees": ["user1@example.com"],
            "priority": "P1",
            "trigger": "monitor",
        },
        "relations": {"service": "S1"},
    }
    monkeypatch.undo()
    assert_engines_agree(PAGERDUTY_LIKE, items)


def test_compiling_a_resource_again_compiles_no_jq(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resync compiles its resources every run; libjq compiles a program once per thread
    (~1 ms each, on the event loop)."""
    compiled: list[str] = []
    original = jq.compile

    def counting(text: str) -> Any:
        compiled.append(text)
        return original(text)

    monkeypatch.setattr(jq, "compile", counting)
    config = resource(
        {"seen": ".cache_probe | tostring", "size": ".cache_probe_items | length * 2"},
        identifier='"probe-" + (.id | tostring)',
        title=".cache_probe_title",
    )
    items = [{"id": n, "cache_probe": n, "cache_probe_items": [n]} for n in range(3)]
    first = compile_resource(config).map_batch(items)
    assert compiled  # cold: every jq leaf and the fused program
    compiled.clear()
    again = compile_resource(config).map_batch(items)
    assert compiled == []
    assert again == first
    assert again.entities[2]["properties"] == {"seen": "2", "size": 2}

    elsewhere: list[Any] = []
    thread = threading.Thread(target=lambda: elsewhere.append(compile_resource(config)))
    thread.start()
    thread.join()
    assert compiled  # libjq programs are not shared between threads
    assert elsewhere[0].map_batch(items) == first

    broken = resource({"p": ".cache_probe | map("})
    for _ in range(2):  # an invalid program is refused every time, never remembered
        with pytest.raises(ConfigError, match="invalid jq"):
            compile_resource(broken)


def test_a_trivial_selector_and_native_leaves_never_touch_libjq(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled = compile_resource(resource({"a": ".a", "b": '.["b-c"][0]'}, identifier=".id"))

    def refuse(*args: Any) -> Any:
        raise AssertionError("libjq was called")

    monkeypatch.setattr(_jq, "first_output", refuse)
    batch = compiled.map_batch([{"id": "x", "a": 1, "b-c": [2]}, {"id": "y"}])
    assert [e["properties"] for e in batch.entities] == [{"a": 1, "b": 2}, {"a": None, "b": None}]


@pytest.mark.parametrize(
    ("identifier", "blueprint", "field", "shown"),
    [
        (".missing", '"bp"', "identifier", "null"),
        ('""', '"bp"', "identifier", '""'),
        ("empty", '"bp"', "identifier", "null"),
        ("false", '"bp"', "identifier", "false"),
        ('"x"', ".missing", "blueprint", "null"),
        ('"x"', '""', "blueprint", '""'),
        ("null", "null", "identifier", "null"),
    ],
)
def test_empty_identifier_or_blueprint_is_an_item_error(
    identifier: str, blueprint: str, field: str, shown: str
) -> None:
    config = resource({}, identifier=identifier, blueprint=blueprint)
    for policy in POLICIES:
        batch = compile_resource(config, on_field_error=policy).map_batch([{"a": 1}])
        assert batch.entities == []
        [error] = batch.errors
        assert (error.index, error.element, error.field) == (0, None, field)
        assert error.message == f"mapped to {shown}; an entity needs a non-empty {field}"
        assert_engines_agree(config, [{"a": 1}], policy)


def test_field_error_policy() -> None:
    config = resource({"x": ".a.b", "y": ".a | ascii_downcase"}, identifier=".id")
    items = [{"id": "1", "a": "TEXT"}]
    failed = compile_resource(config).map_batch(items)
    assert failed.entities == []
    assert [(e.field, e.message) for e in failed.errors] == [
        ("properties.x", 'Cannot index string with string ("b")')
    ]
    nulled = compile_resource(config, on_field_error="null").map_batch(items)
    assert nulled.errors == []
    assert nulled.entities[0]["properties"] == {"x": None, "y": "text"}


def test_selector_outcomes() -> None:
    config = resource({"v": ".v"}, identifier=".id", selector=".keep")
    items: list[Any] = [
        {"id": "a", "keep": True},
        {"id": "b", "keep": False},
        {"id": "c"},
        {"id": "d", "keep": "yes"},
        "not an object",
    ]
    batch = compile_resource(config).map_batch(items)
    assert [e["identifier"] for e in batch.entities] == ["a"]
    assert batch.filtered_out == 1
    assert [(e.index, e.message) for e in batch.errors] == [
        (2, "the query must produce true or false, got null"),
        (3, 'the query must produce true or false, got "yes"'),
        (4, 'Cannot index string with string ("keep")'),
    ]
    assert_engines_agree(config, items)


def test_items_to_parse_expands_and_reports_per_parent() -> None:
    config = resource(
        {"revision": ".item.revision", "app": ".metadata.name", "rest": ".status"},
        identifier='.metadata.uid + "-" + (.item.id | tostring)',
        port={"itemsToParse": ".status.history // []"},
    )
    items: list[Any] = [
        {"metadata": {"uid": "u", "name": "app"}, "status": {"history": [{"id": 1}, {"id": 2}]}},
        {"metadata": {"uid": "v"}, "status": {"history": "oops"}},
        {"metadata": {"uid": "w"}, "status": {}},
    ]
    batch = compile_resource(config).map_batch(items)
    assert [e["identifier"] for e in batch.entities] == ["u-1", "u-2"]
    assert batch.entities[0]["properties"]["rest"] == {}  # the array left the parent
    assert [(e.index, e.element, e.field) for e in batch.errors] == [(1, None, "itemsToParse")]
    assert str(batch.errors[0]) == 'item 1: itemsToParse: expected an array (or null), got "oops"'
    assert compile_resource(config).plan["itemsToParse"] == "isolated"  # once per parent
    assert_engines_agree(config, items)


def test_items_to_parse_without_deletable_path() -> None:
    config = resource({}, port={"itemsToParse": "[.a[]]"})
    with pytest.raises(ConfigError, match="itemsToParseTopLevelTransform: false"):
        compile_resource(config)
    with pytest.raises(ConfigError, match="itemsToParseTopLevelTransform: false"):
        ReferenceMapper(config)
    kept = resource(
        {"parent": ".a"},
        identifier=".item | tostring",
        port={"itemsToParse": "[.a[]]", "itemsToParseTopLevelTransform": False},
    )
    batch = assert_engines_agree(kept, [{"a": [1, 2]}])
    assert [e["properties"]["parent"] for e in batch.entities] == [[1, 2], [1, 2]]


@pytest.mark.parametrize(
    ("mappings", "message"),
    [
        ({"identifier": ".a["}, "resource 'thing' identifier: invalid jq '.a['"),
        ({"properties": {"p": "map("}}, "resource 'thing' properties.p: invalid jq"),
        ({"selector": "tru e"}, "resource 'thing' selector: invalid jq"),
        ({"port": {"itemsToParse": "..["}}, "resource 'thing' itemsToParse: invalid jq"),
        ({"properties": {"p": ""}}, "properties.p: invalid jq ''"),
        (
            {"relations": {"r": {"combinator": "maybe", "rules": []}}},
            "relations.r.combinator: invalid jq 'maybe'",
        ),
    ],
)
def test_invalid_jq_is_a_config_error(mappings: dict[str, Any], message: str) -> None:
    properties = mappings.pop("properties", {})
    config = resource(properties, **mappings)
    with pytest.raises(ConfigError) as caught:
        compile_resource(config)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError):
        ReferenceMapper(config)


def test_bare_combinators_are_literals() -> None:
    query = {"combinator": "and", "rules": [{"property": '"p"', "operator": "'='", "value": ".v"}]}
    batch = compile_resource(resource({}, relations={"r": query})).map_batch([{"v": 1}])
    assert batch.entities[0]["relations"]["r"] == {
        "combinator": "and",
        "rules": [{"property": "p", "operator": "=", "value": 1}],
    }


def test_entities_are_built_with_any_key_and_at_any_depth() -> None:
    odd_keys = {"it's": ".a", 'say "hi"': ".a", "back\\slash\n": ".a", "{v[0]}": ".a"}
    query: dict[str, Any] = {"property": '"p"', "operator": "'='", "value": ".a"}
    for _ in range(150):  # deeper than a Python display expression may nest
        query = {"combinator": "and", "rules": [query]}
    config = resource(odd_keys, relations={"deep": query, "list": "[.a, [.a]]"})
    batch = assert_engines_agree(config, [{"a": 1}, {"a": 2}])
    first, second = batch.entities
    assert first["properties"] == dict.fromkeys(odd_keys, 1)
    assert first["relations"]["list"] == [1, [1]]
    depth, rules = 0, first["relations"]["deep"]
    while "rules" in rules:
        depth, rules = depth + 1, rules["rules"][0]
    assert (depth, rules["value"]) == (150, 1)
    first["properties"]["it's"] = "changed"  # each entity holds containers of its own
    assert second["properties"]["it's"] == 2


def test_unfusable_leaves_run_alone() -> None:
    config = resource({"loc": "$__loc__", "halt": ".a | halt_error", "ok": ".a | tostring"})
    compiled = compile_resource(config)
    assert compiled.plan["properties.loc"] == "isolated"
    assert compiled.plan["properties.halt"] == "isolated"
    assert compiled.plan["properties.ok"] == "jq"
    batch = assert_engines_agree(config, [{"a": 1}])
    assert batch.entities[0]["properties"] == {
        "loc": {"file": "<top-level>", "line": 1},
        "halt": None,
        "ok": "1",
    }


def test_fused_program_failures_fall_back_to_single_leaves() -> None:
    broken = _FusedProgram.build([_FusedLeaf(")", None, 0)], gated=False)
    assert broken.program is None
    assert broken.run([{}, {}]) == [None, None]
    halting = _FusedProgram.build([_FusedLeaf("halt", None, 0)], gated=False)
    assert halting.run([{}]) == [None]


def test_items_json_cannot_encode_fail_only_when_read() -> None:
    config = resource({"a": ".a", "b": ".b | tostring"}, identifier=".id")
    items = [{"id": "1", "a": object(), "b": 1}, {"id": "2", "a": 1, "b": 2}]
    batch = compile_resource(config).map_batch(items)
    assert [e["identifier"] for e in batch.entities] == ["2"]
    [error] = batch.errors
    assert error.field == "properties.a"
    assert "not JSON serialisable" in error.message


def test_item_error_rendering() -> None:
    error = ItemError(3, 1, "identifier", "mapped to null", {"x": "y" * 500})
    assert str(error) == "item 3 element 1: identifier: mapped to null"
    assert str(ItemError(3, None, "f", "boom", {})) == "item 3: f: boom"
    assert error.preview.startswith('{"x":"yyy')
    assert len(error.preview) == 200
    exception = error.to_exception()
    assert isinstance(exception, MappingError)
    assert str(exception) == str(error)


def test_public_api_is_curated() -> None:
    import shoal.sync.mapping as mapping

    assert mapping.__all__ == sorted(mapping.__all__)
    for name in mapping.__all__:
        assert getattr(mapping, name) is not None
