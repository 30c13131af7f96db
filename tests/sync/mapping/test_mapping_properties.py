"""Property tests: random nested JSON items and random plain paths, compiler vs reference."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from tests.sync.mapping.mapping_helpers import assert_engines_agree, resource

KEYS = ["a", "b", "a-b", "é", "0"]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), children, max_size=4),
    ),
    max_leaves=20,
)
items = st.lists(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5), max_size=6)


@st.composite
def paths(draw: st.DrawFn) -> str:
    """A plain jq path in any of its spellings, sometimes with `?`."""
    text = ""
    for step in draw(st.lists(st.sampled_from(KEYS) | st.integers(-3, 3), max_size=4)):
        if isinstance(step, int):
            text += draw(st.sampled_from([f"[{step}]", f".[{step}]", f"[ {step} ]"]))
        elif step.isascii() and step.isidentifier():
            text += draw(st.sampled_from([f".{step}", f'."{step}"', f'["{step}"]']))
        else:
            text += draw(st.sampled_from([f'."{step}"', f".[{json.dumps(step)}]"]))
        if draw(st.integers(0, 5)) == 0:
            text += "?"
    if not text.startswith("."):
        text = "." + text
    return text


SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(path=paths(), batch=items)
def test_paths_match_libjq(path: str, batch: list[Any]) -> None:
    properties = {
        "plain": path,
        "piped": f"{path} | tojson",  # PATH | REST: libjq gets just the path's value
        "wrapped": f"[{path}] | length",  # needs the whole item
    }
    for policy in ("error", "null"):
        assert_engines_agree(resource(properties), batch, policy)  # type: ignore[arg-type]


@SETTINGS
@given(path=paths(), batch=items)
def test_paths_as_identifier_and_selector(path: str, batch: list[Any]) -> None:
    config = resource({"v": path}, identifier=path, selector=f"{path} | type == \"string\"")
    assert_engines_agree(config, batch)
    config = resource({"v": ".a"}, selector=path)
    assert_engines_agree(config, batch)


@SETTINGS
@given(path=paths(), batch=items)
def test_paths_as_items_to_parse(path: str, batch: list[Any]) -> None:
    config = resource(
        {"element": ".item", "parent": ".a"},
        identifier=".item | tojson",
        port={"itemsToParse": path, "itemsToParseTopLevelTransform": path != "."},
    )
    assert_engines_agree(config, batch)
