"""The native fast path: which programs it recognises and what it answers (libjq's answer)."""

from __future__ import annotations

from typing import Any

import jq
import pytest

from shoal.sync.mapping._jq import deletion_path, prepare
from shoal.sync.mapping._native import (
    NeedsJq,
    PathSegment,
    canonical,
    is_constant,
    make_deleter,
    make_getter,
    parse_path,
    split_leading_path,
)


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        (".", []),
        (".a", [PathSegment("a")]),
        (".a.b_1.C", [PathSegment("a"), PathSegment("b_1"), PathSegment("C")]),
        (".a[0]", [PathSegment("a"), PathSegment(0)]),
        (".[-1]", [PathSegment(-1)]),
        ('.["a-b"]', [PathSegment("a-b")]),
        ('."a b"', [PathSegment("a b")]),
        ('.a."b"[ 2 ]', [PathSegment("a"), PathSegment("b"), PathSegment(2)]),
        (".a.[0]", [PathSegment("a"), PathSegment(0)]),
        ('.["\\u00e9"]', [PathSegment("é")]),
        (".a?.b", [PathSegment("a", optional=True), PathSegment("b")]),
        ("  .a  ", [PathSegment("a")]),
    ],
)
def test_plain_paths_are_recognised(text: str, segments: list[PathSegment]) -> None:
    assert parse_path(text) == segments


@pytest.mark.parametrize(
    "text",
    [
        "",
        "..",
        ".a | .b",
        ".a .b",
        ". a",
        ".1",
        ".a[1.5]",
        ".a[10000000000]",
        '.["a\\(1)"]',
        '.["a" + "b"]',
        ".a[]",
        ".a??",
        "[.a]",
        "$x.a",
        ".a // 1",
        '.["\\ud800"]',
        ".a[.b]",
    ],
)
def test_everything_else_is_left_to_libjq(text: str) -> None:
    assert parse_path(text) is None


@pytest.mark.parametrize(
    ("text", "constant"),
    [
        ('"x"', True),
        ('"a \\"quoted\\" \\u00e9"', True),
        ("42", True),
        ("-1.5e3", True),
        ("true", True),
        ("null", True),
        ('"\\(.a)"', False),
        ("[]", False),
        ("{}", False),
        (".a", False),
        ('"a" + "b"', False),
    ],
)
def test_constants(text: str, constant: bool) -> None:
    assert is_constant(text) is constant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (".a | tostring", ([PathSegment("a")], " tostring")),
        (".a.b|map(.c)", ([PathSegment("a"), PathSegment("b")], "map(.c)")),
        ('.s | split("|") | .[0]', ([PathSegment("s")], ' split("|") | .[0]')),
        ('."x|y" | length', ([PathSegment("x|y")], " length")),
    ],
)
def test_split_leading_path(text: str, expected: tuple[list[PathSegment], str]) -> None:
    assert split_leading_path(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        ".a",
        ".a?| tostring",  # "no output" and null differ for what follows
        "(.a | tostring)",
        '"\\(.a | tostring)"',
        ".a as $x | $x",
        ".a |= 1",
        ".a, .b | tostring",
        "[.a | tostring]",
        ".a | ",
        ".a # c | d",
        "if .a then 1 else 2 end | tostring",
    ],
)
def test_split_leading_path_refuses(text: str) -> None:
    assert split_leading_path(text) is None


def libjq(program: str, value: Any) -> Any:
    return next(iter(jq.compile(program).input_value(value)), None)


@pytest.mark.parametrize(
    "value",
    [
        1,
        1.0,
        -0.0,
        2.5,
        1e300,
        2**53,
        "é",
        None,
        True,
        [1.0, {"a": 2.0}],
        {"b": 1, "a": [None, 3.0]},
    ],
)
def test_canonical_equals_a_libjq_round_trip(value: Any) -> None:
    result = canonical(value)
    expected = libjq(".", value)
    assert repr(result) == repr(expected)


@pytest.mark.parametrize(
    "value",
    [2**53 + 1, -(2**60) - 1, float("nan"), float("inf"), "\ud800", (1, 2), {1: "x"}, b"x"],
)
def test_canonical_refuses_what_libjq_would_change(value: Any) -> None:
    with pytest.raises(NeedsJq):
        canonical(value)


ITEM = {"a": {"b": [10, 20, {"c": "deep"}]}, "s": "text", "n": None, "k": {1: "int key"}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".a.b[0]", 10),
        (".a.b[-1].c", "deep"),
        (".a.b[-4]", None),
        (".a.b[3]", None),
        (".missing.x[0]", None),
        (".n.x", None),
        (".s?", "text"),
        (".s.x?", None),
        (".a.b.x?", None),
    ],
)
def test_getters_answer_like_libjq(path: str, expected: Any) -> None:
    segments = parse_path(path)
    assert segments is not None
    assert make_getter(segments)(ITEM) == expected == libjq(path, ITEM)


@pytest.mark.parametrize("path", [".s.x", ".a.b.c", ".a[0]", ".s?.x", '.k["1"]', ".x.y?.z"])
def test_getters_defer_errors_and_oddities_to_libjq(path: str) -> None:
    segments = parse_path(path)
    assert segments is not None
    with pytest.raises(NeedsJq):
        make_getter(segments)({**ITEM, "x": {"y": "s"}})


def test_raw_getters_do_not_canonicalise() -> None:
    segments = parse_path(".a")
    assert segments is not None
    assert repr(make_getter(segments, raw=True)({"a": [1.0]})) == "[1.0]"
    assert repr(make_getter(segments)({"a": [1.0]})) == "[1]"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"status": {"history": [1], "x": 1.0}, "y": 2}, {"status": {"x": 1}, "y": 2}),
        ({"status": {"x": 1}}, {"status": {"x": 1}}),
        ({"status": None}, {"status": None}),
        ({}, {}),
    ],
)
def test_deleter_matches_jq_del(item: Any, expected: Any) -> None:
    segments = parse_path(".status.history")
    assert segments is not None
    deleter = make_deleter(segments)
    assert deleter is not None
    assert repr(deleter(item)) == repr(expected) == repr(libjq("del(.status.history)", item))


def test_deleter_defers_errors() -> None:
    segments = parse_path(".status.history")
    assert segments is not None
    deleter = make_deleter(segments)
    assert deleter is not None
    with pytest.raises(NeedsJq):
        deleter({"status": "text"})
    assert make_deleter([PathSegment(0)]) is None


@pytest.mark.parametrize(
    ("items_to_parse", "path"),
    [
        (".status.history // []", ".status.history"),
        ("(.file.content.raw | fromjson)", ".file.content.raw"),
        (". as $root | .items | map(.)", ".items"),
        ('.a["b"][0] | .c', '.a["b"][0]'),
        ("$x | .a", ".a"),
        (".", None),
        ("[.a[]]", None),
        ("map(.x)", None),
    ],
)
def test_deletion_path_follows_oceans_heuristic(items_to_parse: str, path: str | None) -> None:
    assert deletion_path(items_to_parse) == path


@pytest.mark.parametrize(
    ("expression", "program"),
    [
        ("'x'", '"x"'),
        ("'a' + .b", '"a" + .b'),
        ('"it\'s"', '"it\'s"'),
        ("and", '"and"'),
        (" or ", '"or"'),
        (".and", ".and"),
    ],
)
def test_prepare_rewrites_like_port(expression: str, program: str) -> None:
    assert prepare(expression) == program
