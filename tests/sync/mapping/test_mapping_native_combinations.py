"""``PATH // OTHER`` and ``PATH | length`` run natively, and must still equal plain libjq.

They are the commonest leaves after plain paths (``.phone // .email``, ``.items | length``);
whatever the native getter cannot decide (an error on the left, a number's length, a huge
int) goes to libjq, so every case here must agree with the per-field reference.
"""

from __future__ import annotations

from typing import Any

import pytest

from shoal.sync.mapping import compile_resource
from tests.sync.mapping.mapping_helpers import POLICIES, assert_engines_agree, resource

NATIVE = [
    ".a // .b",
    ".a // null",
    ".a // false",
    '.a // "fallback"',
    ".a // 0",
    ".a.b // .c",
    ".a? // .b",
    ".a[0] // .b",
    '.["k-1"] // .b',
    ".missing // .also_missing",
    ".a//.b",
    ".a | length",
    ".s | length",
    ".l | length",
    ".a.b | length",
    ".missing | length",
]

NOT_NATIVE = [
    ".a // .b // .c",
    '.a // "x|y"',
    ".a //= 1",
    ".a | length + 1",
    ".a? | length",
    "(.a) // .b",
]

ITEMS: list[Any] = [
    {},
    {"a": None, "b": 2},
    {"a": False, "b": "b"},
    {"a": 0, "b": 1},
    {"a": "", "b": "x"},
    {"a": [], "b": None, "c": 3},
    {"a": {"b": None}, "c": "c"},
    {"a": {"b": [1, 2]}, "c": 1},
    {"a": "str", "s": "héllo ☃", "l": [1, [2], {}]},
    {"a": 5, "s": "", "l": []},
    {"a": -2.5, "b": 1},
    {"a": True, "b": 1},
    {"a": 2**60, "b": 1},
    {"a": [2**60], "l": {"x": 1, "y": 2}},
    {"k-1": "dash", "b": 0},
    {"a": {"x": 1}, "s": None, "l": None},
    {"missing": None, "also_missing": [None]},
]


@pytest.mark.parametrize("expression", NATIVE)
def test_native_combinations_are_native(expression: str) -> None:
    assert compile_resource(resource({"v": expression})).plan["properties.v"] == "path"


@pytest.mark.parametrize("expression", NOT_NATIVE)
def test_other_forms_stay_with_libjq(expression: str) -> None:
    assert compile_resource(resource({"v": expression})).plan["properties.v"] != "path"


@pytest.mark.parametrize("on_field_error", POLICIES)
@pytest.mark.parametrize("expression", NATIVE + NOT_NATIVE)
def test_native_combinations_equal_libjq(expression: str, on_field_error: Any) -> None:
    assert_engines_agree(resource({"v": expression}), ITEMS, on_field_error)
