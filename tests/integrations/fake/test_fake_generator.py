"""The pure generator: determinism, shape, paging, item size and null identifiers."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from itertools import islice

import orjson
import pytest

from shoal.errors import ConfigError
from shoal.integrations.fake import (
    DEPARTMENT_KIND,
    KINDS,
    OFFICE_KIND,
    PERSON_KIND,
    PROJECT_KIND,
    TEAM_KIND,
    FakeSettings,
    OrgShape,
    generate_items,
    generate_persons,
    iter_pages,
    org_shape,
    person_at,
)

PERSON_FIELDS = {
    "id": (str,),
    "name": (str,),
    "email": (str,),
    "age": (int,),
    "status": (str,),
    "title": (str,),
    "department_id": (str,),
    "team_id": (str,),
    "office_id": (str,),
    "project_ids": (list,),
    "hire_date": (str,),
    "phone": (str, type(None)),
    "revision": (int,),
    "bio": (str, type(None)),
}


def test_same_settings_same_organisation() -> None:
    settings = FakeSettings(persons=3000, seed=7, generation=4)
    for kind in KINDS:
        assert list(generate_items(settings, kind)) == list(generate_items(settings, kind))


def test_seed_changes_the_organisation_but_not_the_identifiers() -> None:
    one = list(generate_persons(FakeSettings(persons=200, seed=1)))
    two = list(generate_persons(FakeSettings(persons=200, seed=2)))
    assert [p["id"] for p in one] == [p["id"] for p in two]
    assert sum(a != b for a, b in zip(one, two, strict=True)) > 190


def test_any_range_is_the_matching_slice_of_the_whole_stream() -> None:
    settings = FakeSettings(persons=5000, generation=2, item_size=600)
    everything = list(generate_persons(settings))
    by_index = {int(p["id"].removeprefix("person-")): p for p in everything}
    part = list(generate_persons(settings, 1234, 2345))
    assert part == [by_index[i] for i in range(1234, 2345) if i in by_index]
    assert person_at(settings, 1500) == by_index.get(1500)
    tail = list(generate_persons(settings, 4990, 10_000))
    assert tail == [by_index[i] for i in range(4990, 5000) if i in by_index]


def test_stop_is_clipped_and_empty_organisation_is_empty() -> None:
    assert len(list(generate_persons(FakeSettings(persons=10), 5, 100))) == 5
    assert list(generate_persons(FakeSettings(persons=0))) == []
    assert list(iter_pages(FakeSettings(persons=0), PERSON_KIND)) == []


def test_person_fields_and_types() -> None:
    persons = list(generate_persons(FakeSettings(persons=2000, item_size=0)))
    assert len(persons) == 2000
    for person in persons:
        assert list(person) == list(PERSON_FIELDS)
        for name, types in PERSON_FIELDS.items():
            assert isinstance(person[name], types), (name, person)
        assert 20 <= person["age"] <= 65
        assert person["status"] in {"WORKING", "NOPE"}
        assert person["hire_date"].endswith("T00:00:00Z")
        assert person["bio"] is None
        assert len(set(person["project_ids"])) == len(person["project_ids"]) <= 3
    assert len({p["email"] for p in persons}) == len(persons)
    assert any(p["phone"] is None for p in persons)
    assert any(p["project_ids"] == [] for p in persons)
    assert Counter(p["status"] for p in persons)["WORKING"] > 1500


@pytest.mark.parametrize(
    ("persons", "expected"),
    [
        (0, OrgShape(departments=4, offices=3, teams=8, projects=10)),
        (1000, OrgShape(departments=4, offices=3, teams=8, projects=10)),
        (100_000, OrgShape(departments=5, offices=3, teams=100, projects=200)),
        (1_000_000, OrgShape(departments=50, offices=20, teams=1000, projects=2000)),
    ],
)
def test_org_shape(persons: int, expected: OrgShape) -> None:
    assert org_shape(persons) == expected


def test_every_reference_points_at_an_existing_item() -> None:
    settings = FakeSettings(persons=30_000)
    ids = {kind: {item["id"] for item in generate_items(settings, kind)} for kind in KINDS}
    shape = org_shape(settings.persons)
    assert len(ids[DEPARTMENT_KIND]) == shape.departments
    assert len(ids[OFFICE_KIND]) == shape.offices
    assert len(ids[TEAM_KIND]) == shape.teams
    assert len(ids[PROJECT_KIND]) == shape.projects
    teams = {t["id"]: t for t in generate_items(settings, TEAM_KIND)}
    for team in teams.values():
        assert team["department_id"] in ids[DEPARTMENT_KIND]
    for project in generate_items(settings, PROJECT_KIND):
        assert project["team_id"] in ids[TEAM_KIND]
    used_teams, used_offices, used_projects = set(), set(), set()
    for person in generate_persons(settings):
        assert person["department_id"] == teams[person["team_id"]]["department_id"]
        assert person["office_id"] in ids[OFFICE_KIND]
        assert set(person["project_ids"]) <= ids[PROJECT_KIND]
        used_teams.add(person["team_id"])
        used_offices.add(person["office_id"])
        used_projects.update(person["project_ids"])
    assert used_teams == ids[TEAM_KIND]
    assert used_offices == ids[OFFICE_KIND]
    assert used_projects == ids[PROJECT_KIND]


def test_unknown_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no kind"):
        generate_items(FakeSettings(), "fake-robot")


@pytest.mark.parametrize(
    ("persons", "page_size", "expected"),
    [
        (2500, 1000, [1000, 1000, 500]),
        (2000, 1000, [1000, 1000]),
        (7, 3, [3, 3, 1]),
        (5, 100, [5]),
    ],
)
def test_person_page_sizes(persons: int, page_size: int, expected: list[int]) -> None:
    settings = FakeSettings(persons=persons, page_size=page_size)
    assert [len(page) for page in iter_pages(settings, PERSON_KIND)] == expected


def test_pages_stay_full_when_persons_are_dropped() -> None:
    settings = FakeSettings(persons=10_000, page_size=300, generation=1)
    sizes = [len(page) for page in iter_pages(settings, PERSON_KIND)]
    total = sum(sizes)
    assert total < 10_000
    assert sizes == [300] * (total // 300) + ([total % 300] if total % 300 else [])


def test_small_kinds_are_paged_too() -> None:
    settings = FakeSettings(persons=100_000, page_size=30)
    assert [len(page) for page in iter_pages(settings, TEAM_KIND)] == [30, 30, 30, 10]
    assert [len(page) for page in iter_pages(settings, DEPARTMENT_KIND)] == [5]


@pytest.mark.parametrize("item_size", [600, 1000, 4096, 50_000])
def test_item_size_is_approximated(item_size: int) -> None:
    settings = FakeSettings(persons=200_000, item_size=item_size)
    sample = list(islice(generate_persons(settings, 150_000), 2000))
    sizes = [len(orjson.dumps(person)) for person in sample]
    mean = sum(sizes) / len(sizes)
    assert abs(mean - item_size) <= 0.03 * item_size
    assert all(abs(size - item_size) <= 80 for size in sizes)
    assert all(isinstance(person["bio"], str) for person in sample)


def test_small_item_size_means_no_padding() -> None:
    settings = FakeSettings(persons=1000, item_size=200)
    assert all(person["bio"] is None for person in generate_persons(settings))


def test_null_identifiers() -> None:
    settings = FakeSettings(persons=1000, null_identifier_every=7)
    persons = list(generate_persons(settings))
    null_positions = [i for i, person in enumerate(persons) if person["id"] is None]
    assert null_positions == list(range(6, 1000, 7))
    assert len(null_positions) == 1000 // 7
    assert all(persons[i]["email"] for i in null_positions)


def test_null_identifiers_off_by_default() -> None:
    assert all(p["id"] is not None for p in generate_persons(FakeSettings(persons=1000)))


def test_padding_does_not_depend_on_generation_or_null_identifiers() -> None:
    settings = FakeSettings(persons=3000, item_size=900)
    plain = list(generate_persons(settings))
    nulls = list(generate_persons(replace(settings, null_identifier_every=2)))
    later = list(generate_persons(replace(settings, generation=7)))
    assert [p["bio"] for p in plain] == [p["bio"] for p in nulls]
    bios = {p["email"]: p["bio"] for p in plain}
    assert all(p["bio"] == bios[p["email"]] for p in later)
