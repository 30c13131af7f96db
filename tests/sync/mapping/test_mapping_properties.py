"""Property tests: random nested JSON items and random plain paths, compiler vs reference."""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shoal.errors import ConfigError
from shoal.sync.mapping import (
    CompiledResource,
    FieldErrorPolicy,
    ReferenceMapper,
    compile_resource,
)
from tests.sync.mapping.mapping_helpers import (
    POLICIES,
    assert_engines_agree,
    assert_mappers_agree,
    resource,
)
from tests.sync.mapping.test_mapping_differential import EXPRESSIONS

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


# SHOAL_MAPPING_EXAMPLES=5000 for a deeper run than CI's.
SETTINGS = settings(
    max_examples=int(os.environ.get("SHOAL_MAPPING_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(path=paths(), batch=items)
def test_paths_match_libjq(path: str, batch: list[Any]) -> None:
    properties = {
        "plain": path,
        "piped": f"{path} | tojson",  # PATH | REST: libjq gets just the path's value
        "wrapped": f"[{path}] | length",  # needs the whole item
    }
    for policy in POLICIES:
        assert_engines_agree(resource(properties), batch, policy)


@SETTINGS
@given(path=paths(), batch=items)
def test_paths_as_identifier_and_selector(path: str, batch: list[Any]) -> None:
    config = resource({"v": path}, identifier=path, selector=f'{path} | type == "string"')
    assert_engines_agree(config, batch)
    config = resource({"v": ".a"}, selector=path)
    assert_engines_agree(config, batch)


@SETTINGS
@given(path=paths(), batch=items, transform=st.booleans())
def test_paths_as_items_to_parse(path: str, batch: list[Any], transform: bool) -> None:
    config = resource(
        {"element": ".item", "parent": ".a"},
        identifier=".item | tojson",
        port={"itemsToParse": path, "itemsToParseTopLevelTransform": transform},
    )
    try:
        compile_resource(config)
    except ConfigError:
        # Ocean's heuristic finds no key to delete (e.g. `."a"`): both engines refuse.
        with pytest.raises(ConfigError):
            ReferenceMapper(config)
        return
    assert_engines_agree(config, batch)


corpus_items = st.lists(
    st.dictionaries(st.sampled_from(["a", "b", "x", "n", "s", "id", "a-b"]), json_values),
    max_size=6,
)


@functools.cache
def corpus_mappers(policy: FieldErrorPolicy) -> tuple[CompiledResource, ReferenceMapper]:
    config = resource({f"p{i}": expression for i, expression in enumerate(EXPRESSIONS)})
    return compile_resource(config, on_field_error=policy), ReferenceMapper(
        config, on_field_error=policy
    )


@SETTINGS
@given(batch=corpus_items, policy=st.sampled_from(POLICIES))
def test_expression_corpus_on_random_items(batch: list[Any], policy: FieldErrorPolicy) -> None:
    assert_mappers_agree(*corpus_mappers(policy), batch)
