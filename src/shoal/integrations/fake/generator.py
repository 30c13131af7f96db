"""The pure generator behind the fake source: a synthetic organisation, computed on demand.

Nothing here does IO or keeps the organisation in memory. Every item is a function of
``(seed, kind, index)`` -- and, for persons, of ``generation`` -- computed with a few integer
multiplications (the splitmix64 finaliser), so any page can be produced on its own and a
million persons stream through in a few seconds with flat memory.

The organisation (see :func:`org_shape`): departments, offices, teams, projects and persons.
Team ``t`` belongs to department ``t % departments``; project ``p`` belongs to team
``p % teams``; each person has one team (and so one department), one office and 0-3 projects.

Generations (the rule tests and benchmarks can rely on). For person ``i`` let
``h = person_hash(seed, i)``, ``change_phase = (h & 0xFFFF) % 10`` and
``drop_phase = ((h >> 16) & 0xFFFF) % 20``. In generation ``g``:

* the person is **absent** iff ``g > 0 and (g + drop_phase) % 20 == 0`` (about 5 % of persons
  per generation; a person dropped in ``g`` is back in ``g + 1``);
* its **revision** is ``(g + change_phase) // 10``, so it **changed** between ``g - 1`` and
  ``g`` iff ``(g + change_phase) % 10 == 0`` (about 10 % of persons per generation). A change
  bumps ``revision`` and moves ``title`` to the next job title; nothing else moves.

Departments, offices, teams and projects do not depend on the generation.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Final

import orjson

from shoal.errors import ConfigError
from shoal.integrations.fake.kinds import (
    DEPARTMENT_KIND,
    OFFICE_KIND,
    PERSON_KIND,
    PROJECT_KIND,
    TEAM_KIND,
)
from shoal.integrations.fake.settings import FakeSettings
from shoal.types import JSONObject

__all__ = [
    "CHANGE_PERIOD",
    "DROP_PERIOD",
    "OrgShape",
    "generate_items",
    "generate_persons",
    "iter_pages",
    "org_shape",
    "person_at",
    "person_changed",
    "person_hash",
    "person_present",
    "person_revision",
]

CHANGE_PERIOD: Final = 10
"""A person changes once every ``CHANGE_PERIOD`` generations (10 % per generation)."""
DROP_PERIOD: Final = 20
"""A person is absent once every ``DROP_PERIOD`` generations (5 % per generation)."""

_MASK: Final = (1 << 64) - 1
_GOLDEN: Final = 0x9E3779B97F4A7C15
_M1: Final = 0xBF58476D1CE4E5B9
_M2: Final = 0x94D049BB133111EB
_EMAIL_DOMAIN: Final = "fake-org.example"

# One salt per kind so that, e.g., department 3 and person 3 draw unrelated numbers.
_SALTS: Final = {
    DEPARTMENT_KIND: 1,
    OFFICE_KIND: 2,
    TEAM_KIND: 3,
    PROJECT_KIND: 4,
    PERSON_KIND: 5,
}

_FIRST_NAMES: Final = (
    "Ada", "Alan", "Amara", "Anika", "Ben", "Carla", "Chen", "Dara",
    "David", "Elena", "Emeka", "Eva", "Farid", "Grace", "Hana", "Hugo",
    "Ines", "Ivan", "Jade", "James", "Jonas", "Kai", "Karin", "Leila",
    "Liam", "Lucia", "Malik", "Maria", "Mateo", "Mei", "Nadia", "Noah",
    "Olga", "Omar", "Priya", "Quinn", "Rafael", "Rosa", "Sam", "Sara",
    "Sofia", "Tariq", "Tess", "Theo", "Uma", "Victor", "Wen", "Xavier",
    "Yara", "Yusuf", "Zara", "Zoe", "Aiko", "Bruno", "Cleo", "Dmitri",
    "Elif", "Felix", "Gita", "Hiro", "Ingrid", "Joao", "Kofi", "Lena",
)  # fmt: skip
_LAST_NAMES: Final = (
    "Abe", "Adeyemi", "Alvarez", "Andersen", "Bauer", "Becker", "Brown", "Costa",
    "Dubois", "Eriksen", "Fischer", "Garcia", "Gupta", "Hansen", "Ibrahim", "Ito",
    "Jensen", "Kaur", "Khan", "Kim", "Kowalski", "Larsen", "Lee", "Lopez",
    "Martin", "Meyer", "Moreau", "Mueller", "Nakamura", "Nguyen", "Novak", "Okafor",
    "Olsen", "Patel", "Perez", "Petrov", "Quispe", "Rossi", "Santos", "Sato",
    "Schmidt", "Silva", "Singh", "Smith", "Suzuki", "Tanaka", "Taylor", "Tran",
    "Usman", "Varga", "Wagner", "Wang", "Weber", "Wilson", "Xu", "Yamamoto",
    "Yilmaz", "Young", "Zhang", "Zhou", "Zielinski", "Horvat", "Murphy", "Nilsen",
)  # fmt: skip
_FIRST_NAMES_LOWER: Final = tuple(name.lower() for name in _FIRST_NAMES)
_LAST_NAMES_LOWER: Final = tuple(name.lower() for name in _LAST_NAMES)
_TITLES: Final = (
    "Software Engineer", "Senior Software Engineer", "Staff Engineer", "Engineering Manager",
    "Product Manager", "Designer", "Data Scientist", "Site Reliability Engineer",
    "Security Engineer", "QA Engineer", "Technical Writer", "Solutions Architect",
    "Data Engineer", "Support Engineer", "Developer Advocate", "Principal Engineer",
)  # fmt: skip
_DEPARTMENT_NAMES: Final = (
    "Engineering", "Product", "Design", "Sales", "Marketing", "Finance",
    "People", "Legal", "Operations", "Support", "Security", "Research",
)  # fmt: skip
_OFFICES: Final = (
    ("Lisbon", "Portugal", "Europe/Lisbon"),
    ("Berlin", "Germany", "Europe/Berlin"),
    ("New York", "United States", "America/New_York"),
    ("Tel Aviv", "Israel", "Asia/Jerusalem"),
    ("Tokyo", "Japan", "Asia/Tokyo"),
    ("Sao Paulo", "Brazil", "America/Sao_Paulo"),
    ("Nairobi", "Kenya", "Africa/Nairobi"),
    ("Bangalore", "India", "Asia/Kolkata"),
    ("Sydney", "Australia", "Australia/Sydney"),
    ("Toronto", "Canada", "America/Toronto"),
    ("Warsaw", "Poland", "Europe/Warsaw"),
    ("Singapore", "Singapore", "Asia/Singapore"),
)
_TEAM_ADJECTIVES: Final = (
    "Amber", "Blue", "Brave", "Bright", "Calm", "Clever", "Crimson", "Swift",
    "Golden", "Green", "Happy", "Iron", "Jade", "Keen", "Lucky", "Mighty",
    "Noble", "Quiet", "Rapid", "Red", "Silent", "Silver", "Solar", "Steady",
    "Stormy", "Sunny", "Tidal", "Violet", "Wild", "Wise", "Young", "Zesty",
)  # fmt: skip
_TEAM_NOUNS: Final = (
    "Badgers", "Bears", "Comets", "Cranes", "Dolphins", "Eagles", "Falcons", "Foxes",
    "Geckos", "Herons", "Ibises", "Jaguars", "Koalas", "Lions", "Lynxes", "Marlins",
    "Narwhals", "Otters", "Owls", "Pandas", "Pumas", "Ravens", "Salmon", "Sharks",
    "Sparrows", "Tigers", "Turtles", "Vipers", "Walruses", "Whales", "Wolves", "Yaks",
)  # fmt: skip
_PROJECT_CODENAMES: Final = (
    "Apollo", "Borealis", "Cascade", "Delta", "Ember", "Fjord", "Glacier", "Helix",
    "Ion", "Juniper", "Kestrel", "Lumen", "Meridian", "Nimbus", "Orion", "Prism",
    "Quasar", "Ridge", "Summit", "Tundra", "Umbra", "Vertex", "Willow", "Zenith",
)  # fmt: skip
_PROJECT_STATUSES: Final = ("active", "active", "paused", "completed")
_FILLER_WORDS: Final = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud "
    "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat "
)
_CALIBRATION_SAMPLES: Final = 256


@dataclass(frozen=True, slots=True)
class OrgShape:
    """How many of each non-person kind an organisation of ``persons`` persons has."""

    departments: int
    offices: int
    teams: int
    projects: int


def org_shape(persons: int) -> OrgShape:
    """The size of every kind for ``persons`` person slots (a few of each, even for tiny orgs).

    ``departments = max(4, persons // 20_000)``, ``offices = max(3, persons // 50_000)``,
    ``teams = max(8, persons // 1_000)``, ``projects = max(10, persons // 500)``: 1,000,000
    persons make 50 departments, 20 offices, 1,000 teams and 2,000 projects.
    """
    return OrgShape(
        departments=max(4, persons // 20_000),
        offices=max(3, persons // 50_000),
        teams=max(8, persons // 1_000),
        projects=max(10, persons // 500),
    )


def _mix(x: int) -> int:
    """The splitmix64 finaliser: a cheap, well-distributed 64-bit integer hash."""
    x = ((x ^ (x >> 30)) * _M1) & _MASK
    x = ((x ^ (x >> 27)) * _M2) & _MASK
    return x ^ (x >> 31)


def _kind_key(seed: int, kind: str) -> int:
    return _mix((seed * _GOLDEN + _SALTS[kind]) & _MASK)


def person_hash(seed: int, index: int) -> int:
    """The 64-bit hash every attribute of person ``index`` is drawn from (generation rule input)."""
    return _mix((_kind_key(seed, PERSON_KIND) + index * _GOLDEN) & _MASK)


def person_present(seed: int, index: int, generation: int) -> bool:
    """Whether person ``index`` exists in ``generation`` (see the module docstring)."""
    drop_phase = ((person_hash(seed, index) >> 16) & 0xFFFF) % DROP_PERIOD
    return generation == 0 or (generation + drop_phase) % DROP_PERIOD != 0


def person_revision(seed: int, index: int, generation: int) -> int:
    """How many times person ``index`` changed in generations ``1 .. generation``."""
    change_phase = (person_hash(seed, index) & 0xFFFF) % CHANGE_PERIOD
    return (generation + change_phase) // CHANGE_PERIOD


def person_changed(seed: int, index: int, generation: int) -> bool:
    """Whether person ``index`` differs between ``generation - 1`` and ``generation``.

    Only the data is compared: a person can change in a generation it is absent from.
    """
    if generation <= 0:
        return False
    return person_revision(seed, index, generation) != person_revision(seed, index, generation - 1)


@functools.cache
def _dates() -> tuple[str, ...]:
    """Midnight UTC of every day from 2010-01-01 on, for 16 years, as ISO-8601 date-times."""
    start = datetime(2010, 1, 1, tzinfo=UTC)
    return tuple(
        (start + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ") for day in range(16 * 365)
    )


@functools.cache
def _phones() -> tuple[str, ...]:
    """Every phone number a person can have, ``+1-555-0000`` to ``+1-555-9999``."""
    return tuple(f"+1-555-{n:04d}" for n in range(10_000))


@functools.lru_cache(maxsize=8)
def _bios(length: int) -> tuple[str, ...]:
    """The padding strings of ``length`` characters a person's ``bio`` is picked from.

    32 variants (different windows of the filler text) up to 32 KiB, one above: persons share
    these string objects, so padding costs neither time nor memory per person.
    """
    variants = 32 if length <= 32_768 else 1
    filler = _FILLER_WORDS * (length // len(_FILLER_WORDS) + 2)
    return tuple(filler[offset : offset + length] for offset in range(variants))


def _numbered(name: str, index: int, pool_size: int) -> str:
    """``name`` for the first lap over a name pool, ``"name 2"`` for the second, and so on."""
    lap = index // pool_size
    return name if lap == 0 else f"{name} {lap + 1}"


def _team_name(team: int) -> str:
    adjectives, nouns = len(_TEAM_ADJECTIVES), len(_TEAM_NOUNS)
    name = f"{_TEAM_ADJECTIVES[team % adjectives]} {_TEAM_NOUNS[(team // adjectives) % nouns]}"
    return _numbered(name, team, adjectives * nouns)


@dataclass(frozen=True, slots=True)
class _PersonTables:
    """Per-organisation lookup tables of the person loop, built once per size."""

    teams: int
    offices: int
    projects: int
    team_ids: tuple[str, ...]
    team_departments: tuple[str, ...]
    office_ids: tuple[str, ...]
    project_ids: tuple[str, ...]  # followed by the first 3 again, so a 3-slice never wraps


@functools.lru_cache(maxsize=16)
def _person_tables(persons: int) -> _PersonTables:
    shape = org_shape(persons)
    project_ids = tuple(f"project-{p}" for p in range(shape.projects))
    return _PersonTables(
        teams=shape.teams,
        offices=shape.offices,
        projects=shape.projects,
        team_ids=tuple(f"team-{t}" for t in range(shape.teams)),
        team_departments=tuple(f"department-{t % shape.departments}" for t in range(shape.teams)),
        office_ids=tuple(f"office-{o}" for o in range(shape.offices)),
        project_ids=project_ids + project_ids[:3],
    )


def _iter_persons(
    settings: FakeSettings, indices: Iterable[int], bio_length: int
) -> Iterator[JSONObject]:
    """The hot loop: every present person of ``indices``, with a ``bio`` of ``bio_length``.

    Kept short, with its tables built elsewhere: everything it needs is a local variable.
    """
    t = _person_tables(settings.persons)
    teams, offices, projects, dates, phones = t.teams, t.offices, t.projects, _dates(), _phones()
    team_ids, team_departments, office_ids, project_ids = (
        t.team_ids,
        t.team_departments,
        t.office_ids,
        t.project_ids,
    )
    firsts, lasts, titles = _FIRST_NAMES, _LAST_NAMES, _TITLES
    firsts_lower, lasts_lower = _FIRST_NAMES_LOWER, _LAST_NAMES_LOWER
    n_titles, n_dates, domain = len(titles), len(dates), _EMAIL_DOMAIN
    bios: tuple[str | None, ...] = _bios(bio_length) if bio_length > 0 else (None,)
    n_bios = len(bios)
    generation, null_every = settings.generation, settings.null_identifier_every
    key = _kind_key(settings.seed, PERSON_KIND)
    mask, golden, m1, m2 = _MASK, _GOLDEN, _M1, _M2

    for i in indices:
        # person_hash(seed, i), inlined: this loop runs a million times per resync.
        h = (key + i * golden) & mask
        h = ((h ^ (h >> 30)) * m1) & mask
        h = ((h ^ (h >> 27)) * m2) & mask
        h ^= h >> 31
        if generation and (generation + ((h >> 16) & 0xFFFF) % 20) % 20 == 0:
            continue  # dropped in this generation
        revision = (generation + (h & 0xFFFF) % 10) // 10
        # A second and third draw for the remaining attributes.
        h2 = ((h ^ (h >> 30)) * m1) & mask
        h2 = ((h2 ^ (h2 >> 27)) * m2) & mask
        h2 ^= h2 >> 31
        h3 = ((h2 ^ (h2 >> 30)) * m1) & mask
        h3 = ((h3 ^ (h3 >> 27)) * m2) & mask
        h3 ^= h3 >> 31

        team = (h >> 32) % teams
        first = h2 & 63
        last = (h2 >> 6) & 63
        n_projects = (h2 >> 28) & 3
        first_project = ((h2 >> 30) & 0xFFFF) % projects
        yield {
            "id": None if null_every and (i + 1) % null_every == 0 else f"person-{i}",
            "name": f"{firsts[first]} {lasts[last]}",
            "email": f"{firsts_lower[first]}.{lasts_lower[last]}.{i}@{domain}",
            "age": 20 + ((h2 >> 12) & 0xFF) % 46,
            "status": "NOPE" if (h2 >> 20) & 15 == 0 else "WORKING",
            "title": titles[(((h2 >> 24) & 15) + revision) % n_titles],
            "department_id": team_departments[team],
            "team_id": team_ids[team],
            "office_id": office_ids[((h2 >> 46) & 0x3FF) % offices],
            "project_ids": list(project_ids[first_project : first_project + n_projects]),
            "hire_date": dates[h3 % n_dates],
            "phone": None if (h2 >> 56) & 7 == 0 else phones[(h3 >> 16) % 10_000],
            "revision": revision,
            "bio": bios[(h2 >> 59) % n_bios],
        }


def _bio_length(settings: FakeSettings) -> int:
    """The ``bio`` length that brings an average person to ``settings.item_size`` bytes."""
    return _calibrated_bio_length(settings.seed, settings.persons, settings.item_size)


@functools.lru_cache(maxsize=64)
def _calibrated_bio_length(seed: int, persons: int, item_size: int) -> int:
    """Calibrate the padding once, on persons spread over the whole index range.

    Ids and e-mails get longer as indices grow, so the sample spans all of them. It uses
    generation 0 and real identifiers whatever the settings say: the padding -- and so every
    ``bio`` -- must not move between generations, or every person would look changed.
    """
    if persons == 0 or item_size == 0:
        return 0
    step = max(1, persons // _CALIBRATION_SAMPLES)
    sample = range(0, persons, step)
    baseline = FakeSettings(persons=persons, seed=seed)
    sizes = [len(orjson.dumps(person)) for person in _iter_persons(baseline, sample, 0)]
    natural = sum(sizes) / len(sizes)
    # "bio": null (4 bytes) becomes "bio": "<n characters>" (n + 2 bytes).
    return max(0, round(item_size - natural + 2))


def generate_persons(
    settings: FakeSettings, start: int = 0, stop: int | None = None
) -> Iterator[JSONObject]:
    """Every person with an index in ``[start, stop)`` present in ``settings.generation``.

    ``stop`` defaults to ``settings.persons`` and is clipped to it. The result is lazy: one
    person is built per ``next()``.
    """
    end = settings.persons if stop is None else min(stop, settings.persons)
    return _iter_persons(settings, range(max(0, start), end), _bio_length(settings))


def person_at(settings: FakeSettings, index: int) -> JSONObject | None:
    """Person ``index`` as served in ``settings.generation``, or ``None`` if it is absent."""
    return next(generate_persons(settings, index, index + 1), None)


def _departments(settings: FakeSettings) -> Iterator[JSONObject]:
    key = _kind_key(settings.seed, DEPARTMENT_KIND)
    pool = len(_DEPARTMENT_NAMES)
    for i in range(org_shape(settings.persons).departments):
        h = _mix((key + i * _GOLDEN) & _MASK)
        yield {
            "id": f"department-{i}",
            "name": _numbered(_DEPARTMENT_NAMES[i % pool], i, pool),
            "cost_center": f"CC-{1000 + i}",
            "budget": 100_000 + (h % 9_901) * 1_000,
        }


def _offices(settings: FakeSettings) -> Iterator[JSONObject]:
    key = _kind_key(settings.seed, OFFICE_KIND)
    pool = len(_OFFICES)
    for i in range(org_shape(settings.persons).offices):
        h = _mix((key + i * _GOLDEN) & _MASK)
        city, country, timezone = _OFFICES[i % pool]
        yield {
            "id": f"office-{i}",
            "name": _numbered(f"{city} Office", i, pool),
            "city": city,
            "country": country,
            "timezone": timezone,
            "capacity": 20 + h % 481,
        }


def _teams(settings: FakeSettings) -> Iterator[JSONObject]:
    shape = org_shape(settings.persons)
    for i in range(shape.teams):
        name = _team_name(i)
        yield {
            "id": f"team-{i}",
            "name": name,
            "department_id": f"department-{i % shape.departments}",
            "slack_channel": "#team-" + name.lower().replace(" ", "-"),
        }


def _projects(settings: FakeSettings) -> Iterator[JSONObject]:
    key = _kind_key(settings.seed, PROJECT_KIND)
    shape = org_shape(settings.persons)
    pool = len(_PROJECT_CODENAMES)
    dates = _dates()
    for i in range(shape.projects):
        h = _mix((key + i * _GOLDEN) & _MASK)
        yield {
            "id": f"project-{i}",
            "name": _numbered(f"Project {_PROJECT_CODENAMES[i % pool]}", i, pool),
            "team_id": f"team-{i % shape.teams}",
            "status": _PROJECT_STATUSES[h & 3],
            "start_date": dates[(h >> 8) % len(dates)],
        }


def generate_items(settings: FakeSettings, kind: str) -> Iterator[JSONObject]:
    """Every item of ``kind`` (one of :data:`~shoal.integrations.fake.kinds.KINDS`), lazily."""
    if kind == PERSON_KIND:
        return generate_persons(settings)
    if kind == DEPARTMENT_KIND:
        return _departments(settings)
    if kind == OFFICE_KIND:
        return _offices(settings)
    if kind == TEAM_KIND:
        return _teams(settings)
    if kind == PROJECT_KIND:
        return _projects(settings)
    raise ConfigError(f"the fake source has no kind {kind!r}")


def iter_pages(settings: FakeSettings, kind: str) -> Iterator[list[JSONObject]]:
    """The items of ``kind`` in pages of ``settings.page_size`` (the last one may be shorter)."""
    items = generate_items(settings, kind)
    while page := list(islice(items, settings.page_size)):
        yield page
