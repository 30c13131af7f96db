"""SeenKeys: what a run wrote, kept compact for its delete phase."""

from __future__ import annotations

import tracemalloc

from hypothesis import given, strategies as st

from shoal.sync.seen import SeenKeys

keys = st.tuples(st.sampled_from(["service", "team", "person"]), st.text(max_size=12))


@given(st.lists(st.lists(keys, max_size=40), max_size=30), st.lists(keys, max_size=40))
def test_answers_like_a_set(
    pages: list[list[tuple[str, str]]], probes: list[tuple[str, str]]
) -> None:
    seen, reference = SeenKeys(), set()
    for page in pages:
        for blueprint in {b for b, _ in page}:
            seen.add(blueprint, [i for b, i in page if b == blueprint])
        reference.update(page)
    assert len(seen) == len(reference)
    for key in [*reference, *probes]:
        assert (key in seen) == (key in reference)


def test_an_identifier_is_seen_only_under_its_blueprint() -> None:
    seen = SeenKeys()
    seen.add("service", ["checkout"])
    assert ("service", "checkout") in seen
    assert ("team", "checkout") not in seen
    assert "checkout" not in seen


def test_keys_written_twice_count_once() -> None:
    seen = SeenKeys()
    seen.add("person", ["ann", "bob"])
    seen.add("person", ["bob", "cy", "ann"])
    assert len(seen) == 3


def test_grows_past_its_first_table() -> None:
    seen = SeenKeys()
    identifiers = [f"person-{n}" for n in range(50_000)]
    for start in range(0, len(identifiers), 1000):
        seen.add("person", identifiers[start : start + 1000])
    assert len(seen) == 50_000
    assert all(("person", identifier) in seen for identifier in identifiers)
    assert ("person", "person-50000") not in seen


def test_costs_at_most_16_bytes_per_key() -> None:
    identifiers = [f"person-{n:07d}" for n in range(200_000)]
    tracemalloc.start()
    try:
        seen = SeenKeys()
        seen.add("person", identifiers)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(seen) == 200_000
    # the table holds 2^19 slots of 8 bytes; growing briefly holds the old half too
    assert current <= 16 * 200_000 * 1.4
    assert peak <= 24 * 200_000 * 1.4
