"""The kinds the fake source serves, in the order of the default mapping config."""

from __future__ import annotations

from typing import Final

__all__ = [
    "DEPARTMENT_KIND",
    "KINDS",
    "OFFICE_KIND",
    "PERSON_KIND",
    "PROJECT_KIND",
    "TEAM_KIND",
]

DEPARTMENT_KIND: Final = "fake-department"
OFFICE_KIND: Final = "fake-office"
TEAM_KIND: Final = "fake-team"
PROJECT_KIND: Final = "fake-project"
PERSON_KIND: Final = "fake-person"

KINDS: Final[tuple[str, ...]] = (
    DEPARTMENT_KIND,
    OFFICE_KIND,
    TEAM_KIND,
    PROJECT_KIND,
    PERSON_KIND,
)
