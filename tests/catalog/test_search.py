"""shoal.catalog.search without IO: parsing, operator semantics, and the SQL prefilter contract."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from shoal.catalog.search import (
    Prefilter,
    Query,
    Rule,
    like_escape,
    matches,
    parse_query,
    prefilter,
)
from shoal.clock import from_iso, to_iso
from shoal.errors import InvalidInputError


@dataclass
class Item:
    """A stand-in entity with the fields the store exposes to :func:`matches`."""

    identifier: str
    blueprint: str = "svc"
    datasource: str | None = None
    updated_at: int = 0
    created_at: int = 0
    title: str | None = None
    team: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    relations: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, is_relation: bool) -> Any:
        if is_relation:
            return self.relations.get(name)
        if not name.startswith("$"):
            return self.properties.get(name)
        return {
            "$identifier": self.identifier,
            "$blueprint": self.blueprint,
            "$datasource": self.datasource,
            "$title": self.title,
            "$team": self.team,
            "$createdAt": self.created_at,
            "$updatedAt": self.updated_at,
        }.get(name)


def q(*rules: Any, combinator: str = "and") -> Query:
    return parse_query({"combinator": combinator, "rules": list(rules)})


def r(prop: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"property": prop, "operator": operator, "value": value}


def _nested(depth: int) -> dict[str, Any]:
    query: dict[str, Any] = {"combinator": "and", "rules": []}
    for _ in range(depth):
        query = {"combinator": "or", "rules": [query]}
    return query


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "must be an object"),
        ({"combinator": "xor", "rules": []}, "combinator"),
        ({"combinator": "and"}, "rules must be a list"),
        ({"combinator": "and", "rules": {}}, "rules must be a list"),
        ({"rules": ["x"]}, "rules[0] must be an object"),
        ({"rules": [r("a", "~", 1)]}, "operator"),
        ({"rules": [{"operator": "=", "value": 1}]}, "needs a 'property'"),
        ({"rules": [r("", "=", 1)]}, "needs a 'property'"),
        ({"rules": [r("$nope", "=", 1)]}, "meta property"),
        ({"rules": [r("$identifier", "in", "a")]}, "list value"),
        ({"rules": [r("tags", "containsAny", "a")]}, "list value"),
        ({"rules": [r("$updatedAt", "between", "2026-01-01T00:00:00Z")]}, "between"),
        ({"rules": [r("$updatedAt", "between", {"from": "2026-01-01T00:00:00Z"})]}, "between"),
        ({"rules": [r("$updatedAt", ">", "yesterday")]}, "ISO-8601"),
        ({"rules": [r("$updatedAt", ">", 5)]}, "ISO-8601"),
        ({"rules": [r("$createdAt", "=", "2026-01-01T00:00:00")]}, "time zone"),
        ({"rules": [{"combinator": "and", "rules": [r("a", "bad", 1)]}]}, "rules[0].rules[0]"),
        ({"rules": [_nested(25)]}, "nested at most"),
        ({"rules": [r("$updatedAt", "in", ["2026-01-01"])]}, "time zone"),
        ({"rules": [r("$createdAt", "beginsWith", "2026")]}, "does not apply to $createdAt"),
        ({"rules": [r("$updatedAt", "contains", "T")]}, "does not apply to $updatedAt"),
    ],
)
def test_parse_errors(data: Any, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_query(data)
    assert fragment in caught.value.message
    assert caught.value.status == 422


def test_parse_shapes() -> None:
    query = parse_query(
        {
            "rules": [
                r(
                    "$updatedAt",
                    "between",
                    {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00+00:00"},
                ),
                {"relation": "owner", "operator": "=", "value": "t1"},
                {"combinator": "or", "rules": []},
            ]
        }
    )
    assert query.combinator == "and"  # the default
    between, relation, nested = query.rules
    assert between == Rule(
        "$updatedAt",
        "between",
        (from_iso("2026-01-01T00:00:00Z"), from_iso("2026-01-02T00:00:00Z")),
    )
    assert relation == Rule("owner", "=", "t1", is_relation=True)
    assert nested == Query("or", ())


# --- semantics ----------------------------------------------------------------------------------

ITEM = Item(
    "svc-a",
    datasource="port-ocean/x/1/svc/exporter",
    updated_at=from_iso("2026-06-01T00:00:00Z"),
    title="Service A",
    team=["core", "ops"],
    properties={
        "n": 5,
        "s": "hello world",
        "tags": ["a", "b"],
        "empty": "",
        "none": None,
        "flag": True,
        "deployed": "2026-03-01T12:00:00+01:00",
    },
    relations={"owner": "t1", "deps": ["svc-b", "svc-c"]},
)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (r("$identifier", "=", "svc-a"), True),
        (r("$identifier", "=", "svc"), False),
        (r("$identifier", "!=", "svc"), True),
        (r("$identifier", "in", ["x", "svc-a"]), True),
        (r("$identifier", "notIn", ["x", "svc-a"]), False),
        (r("$team", "=", "ops"), True),  # = on a list means membership
        (r("$team", "in", ["nobody", "core"]), True),
        (r("tags", "contains", "a"), True),
        (r("tags", "contains", "z"), False),
        (r("s", "contains", "lo wo"), True),
        (r("s", "doesNotContains", "xyz"), True),
        (r("tags", "containsAny", ["z", "b"]), True),
        (r("s", "containsAny", ["zz", "world"]), True),
        (r("s", "beginsWith", "hell"), True),
        (r("s", "doesNotBeginsWith", "hell"), False),
        (r("s", "endsWith", "world"), True),
        (r("s", "doesNotEndsWith", "x"), True),
        (r("n", "beginsWith", "5"), False),  # string operators need strings
        (r("missing", "isEmpty"), True),
        (r("none", "isEmpty"), True),
        (r("empty", "isEmpty"), True),
        (r("tags", "isNotEmpty"), True),
        (r("$team", "isEmpty"), False),
        (r("n", ">", 4), True),
        (r("n", ">", 5), False),
        (r("n", ">=", 5), True),
        (r("n", "<", 5.5), True),
        (r("n", "<=", 4), False),
        (r("n", ">", "4"), False),  # no cross-type comparisons
        (r("flag", ">", 0), False),  # booleans are not numbers
        (r("s", ">", "hello"), True),
        (r("missing", "=", None), True),
        (r("missing", "!=", 1), True),
        (
            r(
                "$updatedAt",
                "between",
                {"from": "2026-05-01T00:00:00Z", "to": "2026-07-01T00:00:00Z"},
            ),
            True,
        ),
        (
            r(
                "$updatedAt",
                "between",
                {"from": "2026-06-01T00:00:00Z", "to": "2026-06-01T00:00:00Z"},
            ),
            True,
        ),
        (
            r(
                "$updatedAt",
                "notBetween",
                {"from": "2026-05-01T00:00:00Z", "to": "2026-07-01T00:00:00Z"},
            ),
            False,
        ),
        (
            r(
                "deployed",
                "between",
                {"from": "2026-03-01T11:00:00Z", "to": "2026-04-01T00:00:00Z"},
            ),
            True,
        ),
        (
            r(
                "deployed",
                "between",
                {"from": "2026-03-01T11:00:01Z", "to": "2026-04-01T00:00:00Z"},
            ),
            False,
        ),
        (
            r(
                "deployed",
                "notBetween",
                {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"},
            ),
            True,
        ),
        (r("s", "between", {"from": "2026-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}), False),
        (r("n", "between", {"from": "1970-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}), False),
        (r("$updatedAt", ">", "2026-05-31T23:59:59+00:00"), True),
        (r("$updatedAt", "=", "2026-06-01T02:00:00+02:00"), True),
        (r("$datasource", "contains", "/svc/"), True),
        # JSON equality: true is not 1, nor 1 true
        (r("flag", "=", 1), False),
        (r("flag", "=", True), True),
        (r("n", "=", True), False),
        (r("n", "=", 5.0), True),
        (r("flag", "in", [1, 2]), False),
        (r("tags", "contains", True), False),
        (r("tags", "containsAny", [1, "b"]), True),
        (r("flag", "!=", 1), True),
        # moments in time, on the meta timestamps and date-time properties alike
        (r("$updatedAt", "in", ["2026-06-01T02:00:00+02:00"]), True),
        (r("$updatedAt", "notIn", ["2026-06-01T00:00:00Z"]), False),
        (r("deployed", ">", "2026-03-01T10:59:59Z"), True),  # 11:00Z, though "12:00+01:00"
        (r("deployed", "<", "2026-03-01T11:30:00Z"), True),
        (r("deployed", ">=", "2026-03-01T11:00:00Z"), True),
        (r("s", ">", "2026-01-01T00:00:00Z"), False),  # not a moment
        (r("$datasource", "beginsWith", "port-ocean/x/"), True),
        ({"relation": "owner", "operator": "=", "value": "t1"}, True),
        ({"relation": "deps", "operator": "in", "value": ["svc-c"]}, True),
        ({"relation": "deps", "operator": "=", "value": "svc-b"}, True),
        ({"relation": "owner", "operator": "isEmpty"}, False),
    ],
)
def test_operators(rule: dict[str, Any], expected: bool) -> None:
    assert matches(q(rule), ITEM.get) is expected


def test_combinators() -> None:
    yes, no = r("n", "=", 5), r("n", "=", 6)
    assert matches(q(), ITEM.get) is True  # empty and
    assert matches(q(combinator="or"), ITEM.get) is False  # empty or
    assert matches(q(yes, no), ITEM.get) is False
    assert matches(q(yes, no, combinator="or"), ITEM.get) is True
    nested = {"combinator": "or", "rules": [no, {"combinator": "and", "rules": [yes]}]}
    assert matches(q(yes, nested), ITEM.get) is True
    assert matches(q(yes, {"combinator": "or", "rules": []}), ITEM.get) is False


def test_prefilter_narrows_indexed_columns() -> None:
    ocean = q(
        r("$identifier", "in", ["a", "b", "c"]),
        r("$identifier", "=", "b"),
        r("$blueprint", "=", "svc"),
        r("$datasource", "contains", "port-ocean/x_y/"),
        r("$datasource", "endsWith", "/100%/exporter"),
        r("$updatedAt", "between", {"from": to_iso(10), "to": to_iso(20)}),
        r("$updatedAt", "<", to_iso(15)),
    )
    hints = prefilter(ocean)
    assert hints.identifiers == {"b"}
    assert hints.blueprints == {"svc"}
    assert hints.datasource_like == ["%port-ocean/x\\_y/%", "%/100\\%/exporter"]
    assert (hints.updated_after, hints.updated_before) == (10, 15)
    assert not hints.empty
    assert prefilter(q(combinator="or")).empty
    assert prefilter(q(r("n", "=", 1), {"combinator": "or", "rules": []})).empty
    assert prefilter(q(r("$identifier", "=", "a"), combinator="or")) == Prefilter()
    assert like_escape("a%b_c\\d") == "a\\%b\\_c\\\\d"


# --- the prefilter never excludes a match -------------------------------------------------------

IDENTIFIERS = ["a", "b", "a_b", "a%b", "ab"]
DATASOURCES = [
    None,
    "",
    "port-ocean/x/1/a/exporter",
    "port-ocean/x_y/2/b/exporter",
    "a%b",
    "A%B",
    "a\\b",
]
FRAGMENTS = [
    "",
    "a",
    "A",
    "%",
    "_",
    "\\",
    "a\\b",
    "a%b",
    "a_b",
    "port-ocean/x/",
    "/exporter",
    "x_y",
]
TIMES = [0, 5, 10, 15, 20]

items = st.builds(
    Item,
    identifier=st.sampled_from(IDENTIFIERS),
    blueprint=st.sampled_from(["svc", "team"]),
    datasource=st.sampled_from(DATASOURCES),
    updated_at=st.sampled_from(TIMES),
    properties=st.fixed_dictionaries(
        {}, optional={"n": st.integers(0, 3), "s": st.sampled_from(FRAGMENTS)}
    ),
)
times = st.sampled_from(TIMES).map(to_iso)


def rules() -> st.SearchStrategy[dict[str, Any]]:
    identifier_value = st.sampled_from([*IDENTIFIERS, "zzz"])
    datasource = st.builds(
        r,
        st.just("$datasource"),
        st.sampled_from(["=", "!=", "contains", "beginsWith", "endsWith", "isEmpty"]),
        st.sampled_from(FRAGMENTS),
    )
    updated = st.builds(
        r, st.just("$updatedAt"), st.sampled_from([">", ">=", "<", "<=", "=", "!="]), times
    )
    between = st.builds(
        r,
        st.just("$updatedAt"),
        st.sampled_from(["between", "notBetween"]),
        st.fixed_dictionaries({"from": times, "to": times}),
    )
    return st.one_of(
        st.builds(
            r, st.just("$identifier"), st.sampled_from(["=", "!=", "beginsWith"]), identifier_value
        ),
        st.builds(
            r,
            st.just("$identifier"),
            st.sampled_from(["in", "notIn"]),
            st.lists(identifier_value, max_size=3),
        ),
        st.builds(r, st.just("$blueprint"), st.just("="), st.sampled_from(["svc", "team", "x"])),
        st.builds(
            r,
            st.just("$blueprint"),
            st.just("in"),
            st.lists(st.sampled_from(["svc", "team", "x", 1])),
        ),
        datasource,
        datasource,
        updated,
        between,
        st.builds(r, st.just("n"), st.sampled_from(["=", ">", "<", "isEmpty"]), st.integers(0, 3)),
    )


combinators = st.sampled_from(["and", "and", "and", "or"])
queries = st.recursive(
    st.fixed_dictionaries({"combinator": combinators, "rules": st.lists(rules(), max_size=4)}),
    lambda children: st.fixed_dictionaries(
        {"combinator": combinators, "rules": st.lists(rules() | children, max_size=4)}
    ),
    max_leaves=8,
)


def _like(pattern: str, value: str) -> bool:
    """SQL ``LIKE pattern ESCAPE '\\'`` (case-sensitive, as on PostgreSQL)."""
    regex, index = "", 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            regex += re.escape(pattern[index + 1])
            index += 2
            continue
        regex += ".*" if char == "%" else "." if char == "_" else re.escape(char)
        index += 1
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _admitted(hints: Prefilter, item: Item) -> bool:
    """What the store's WHERE clause keeps for these hints (see EntityStore.iter_matching)."""
    if hints.empty:
        return False
    if hints.identifiers is not None and item.identifier not in hints.identifiers:
        return False
    if hints.blueprints is not None and item.blueprint not in hints.blueprints:
        return False
    for pattern in hints.datasource_like:
        if item.datasource is None or not _like(pattern, item.datasource):
            return False
    if hints.updated_before is not None and not item.updated_at <= hints.updated_before:
        return False
    return hints.updated_after is None or item.updated_at >= hints.updated_after


def _check(data: dict[str, Any], population: list[Item]) -> None:
    query = parse_query(data)
    hints = prefilter(query)
    alone = [item for item in population if matches(query, item.get)]
    narrowed = [item for item in population if _admitted(hints, item) and matches(query, item.get)]
    assert narrowed == alone


populations = st.lists(items, min_size=1, max_size=12)


@settings(max_examples=300, deadline=None, database=None)
@given(rules=st.lists(rules(), min_size=1, max_size=2), population=populations)
def test_prefilter_never_excludes_a_match(
    rules: list[dict[str, Any]], population: list[Item]
) -> None:
    _check({"combinator": "and", "rules": rules}, population)


@settings(max_examples=150, deadline=None, database=None)
@given(data=queries, population=populations)
def test_prefilter_never_excludes_a_match_nested(
    data: dict[str, Any], population: list[Item]
) -> None:
    _check(data, population)
