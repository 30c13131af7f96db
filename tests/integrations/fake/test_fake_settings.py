"""FakeSettings: defaults, validation and the SHOAL_FAKE_* environment variables."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.errors import ConfigError
from shoal.integrations.fake import KINDS, FakeSettings


def test_defaults() -> None:
    settings = FakeSettings()
    assert settings.persons == 1000
    assert settings.page_size == 1000
    assert settings.item_size == 200
    assert settings.page_latency == 0
    assert settings.generation == 0
    assert settings.fail_kind is None
    assert settings.null_identifier_every == 0


def test_from_env_reads_every_knob() -> None:
    environ = {
        "SHOAL_FAKE_PERSONS": "1_000_000",
        "SHOAL_FAKE_PAGE_SIZE": "500",
        "SHOAL_FAKE_ITEM_SIZE": "2048",
        "SHOAL_FAKE_PAGE_LATENCY": "0.25",
        "SHOAL_FAKE_GENERATION": "3",
        "SHOAL_FAKE_SEED": "42",
        "SHOAL_FAKE_FAIL_KIND": "fake-team",
        "SHOAL_FAKE_FAIL_AFTER_PAGES": "2",
        "SHOAL_FAKE_NULL_IDENTIFIER_EVERY": "7",
        "UNRELATED": "ignored",
    }
    assert FakeSettings.from_env(environ) == FakeSettings(
        persons=1_000_000,
        page_size=500,
        item_size=2048,
        page_latency=0.25,
        generation=3,
        seed=42,
        fail_kind="fake-team",
        fail_after_pages=2,
        null_identifier_every=7,
    )


def test_from_env_empty_values_mean_default() -> None:
    assert FakeSettings.from_env({"SHOAL_FAKE_PERSONS": "", "SHOAL_FAKE_FAIL_KIND": " "}) == (
        FakeSettings()
    )


def test_from_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_FAKE_PERSONS", "12")
    assert FakeSettings.from_env().persons == 12


def test_env_var_names() -> None:
    assert FakeSettings.env_var("null_identifier_every") == "SHOAL_FAKE_NULL_IDENTIFIER_EVERY"


@pytest.mark.parametrize(
    ("environ", "match"),
    [
        ({"SHOAL_FAKE_PERSON": "10"}, "unknown fake settings"),
        ({"SHOAL_FAKE_PERSONS": "ten"}, "SHOAL_FAKE_PERSONS: expected an integer"),
        ({"SHOAL_FAKE_PAGE_LATENCY": "slow"}, "SHOAL_FAKE_PAGE_LATENCY: expected a number"),
        ({"SHOAL_FAKE_PERSONS": "-1"}, "persons must be >= 0"),
        ({"SHOAL_FAKE_FAIL_KIND": "fake-robot"}, "fail_kind must be one of"),
    ],
)
def test_from_env_rejects_bad_values(environ: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        FakeSettings.from_env(environ)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"page_size": 0},
        {"item_size": -1},
        {"generation": -1},
        {"fail_after_pages": -2},
        {"null_identifier_every": -1},
        {"page_latency": -0.5},
        {"page_latency": float("nan")},
        {"persons": True},
        {"persons": 1.5},
        {"seed": "1"},
    ],
)
def test_rejects_out_of_range_or_mistyped_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        FakeSettings(**kwargs)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_can_fail(kind: str) -> None:
    assert FakeSettings(fail_kind=kind).fail_kind == kind
