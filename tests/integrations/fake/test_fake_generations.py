"""Generations: the documented rule decides exactly who changes and who is dropped."""

from __future__ import annotations

import pytest

from shoal.integrations.fake import (
    FakeSettings,
    generate_persons,
    person_changed,
    person_hash,
    person_present,
    person_revision,
)
from shoal.types import JSONObject

PERSONS = 20_000
SEED = 3
ITEM_SIZE = 700  # with padding: the bio must not make unchanged persons look changed


def _phases(index: int) -> tuple[int, int]:
    """(change_phase, drop_phase) exactly as docs/integrations/fake.md defines them."""
    h = person_hash(SEED, index)
    return (h & 0xFFFF) % 10, ((h >> 16) & 0xFFFF) % 20


def _present(index: int, generation: int) -> bool:
    return generation == 0 or (generation + _phases(index)[1]) % 20 != 0


def _changed(index: int, generation: int) -> bool:
    return generation > 0 and (generation + _phases(index)[0]) % 10 == 0


def _snapshot(generation: int) -> dict[int, JSONObject]:
    settings = FakeSettings(persons=PERSONS, seed=SEED, generation=generation, item_size=ITEM_SIZE)
    return {int(p["id"].removeprefix("person-")): p for p in generate_persons(settings)}


def test_generation_zero_has_everyone() -> None:
    snapshot = _snapshot(0)
    assert len(snapshot) == PERSONS
    assert all(isinstance(person["bio"], str) for person in snapshot.values())


@pytest.mark.parametrize("generation", [1, 2, 9, 10, 11, 20, 37])
def test_changes_and_drops_follow_the_documented_rule(generation: int) -> None:
    before, after = _snapshot(generation - 1), _snapshot(generation)
    deleted = before.keys() - after.keys()
    created = after.keys() - before.keys()
    updated = {i for i in before.keys() & after.keys() if before[i] != after[i]}

    everyone = range(PERSONS)
    present_before = {i for i in everyone if _present(i, generation - 1)}
    present_after = {i for i in everyone if _present(i, generation)}
    assert before.keys() == present_before
    assert after.keys() == present_after
    assert deleted == present_before - present_after
    assert created == present_after - present_before
    assert updated == {i for i in present_before & present_after if _changed(i, generation)}

    # "About 10 % change, about 5 % are dropped" per generation.
    assert 0.04 * PERSONS < len(deleted) < 0.06 * PERSONS
    assert len(created) == 0 if generation == 1 else 0.04 * PERSONS < len(created) < 0.06 * PERSONS
    assert 0.08 * PERSONS < len(updated) < 0.11 * PERSONS


def test_a_change_moves_only_revision_and_title() -> None:
    before, after = _snapshot(4), _snapshot(5)
    changed = [i for i in before.keys() & after.keys() if _changed(i, 5)]
    assert changed
    for i in changed:
        old, new = before[i], after[i]
        assert {key for key in old if old[key] != new[key]} == {"revision", "title"}
        assert new["revision"] == old["revision"] + 1


def test_unchanged_persons_are_identical_across_generations() -> None:
    g0, g4 = _snapshot(0), _snapshot(4)
    stable = [i for i in g4 if all(not _changed(i, g) for g in range(1, 5))]
    assert len(stable) > PERSONS // 2  # change phases 0-5 do not change in generations 1-4
    assert all(g0[i] == g4[i] for i in stable)


def test_public_rule_helpers_agree_with_the_rule() -> None:
    for index in range(2000):
        for generation in range(25):
            assert person_present(SEED, index, generation) == _present(index, generation)
            assert person_changed(SEED, index, generation) == _changed(index, generation)
        assert person_revision(SEED, index, 0) == 0
        assert person_revision(SEED, index, 30) == 3
