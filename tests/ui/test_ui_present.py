"""Pure rules of the web UI: formatting, run history helpers, CSRF tokens, config parsing."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.catalog.ui import present
from shoal.catalog.ui.pages_integrations import parse_config_text
from shoal.catalog.ui.session import csrf_token, csrf_valid
from shoal.clock import from_iso
from shoal.errors import ConfigError

NOW = from_iso("2026-11-27T12:00:00Z")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.25, "250 ms"),
        (3.14159, "3.1 s"),
        (42, "42 s"),
        (245, "4 min 05 s"),
        (3 * 3600 + 720, "3 h 12 min"),
        (3 * 86400 + 3600, "3 d 1 h"),
        (None, "—"),
        (-1, "—"),
        (True, "—"),
    ],
)
def test_format_duration(seconds: object, shown: str) -> None:
    assert present.format_duration(seconds) == shown


def test_times_and_relative_times() -> None:
    assert present.format_time("2026-11-27T08:03:12.5+00:00") == "2026-11-27 08:03:12 UTC"
    assert present.format_time(None) == "—"
    assert present.format_time("not a time") == "—"
    assert present.relative_time("2026-11-27T11:57:00Z", now=NOW) == "3 min ago"
    assert present.relative_time("2026-11-27T14:00:00Z", now=NOW) == "in 2 h"
    assert present.relative_time("2026-11-27T12:00:01Z", now=NOW) == "just now"
    assert present.relative_time(None, now=NOW) == ""


@pytest.mark.parametrize(
    ("status", "css"),
    [("running", "running"), ("completed", "completed"), ("failed", "failed"),
     ("aborted", "aborted"), ("skipped", "aborted"), ("blocked", "failed"), (None, "idle"),
     ("whatever", "idle")],
)  # fmt: skip
def test_status_classes(status: object, css: str) -> None:
    assert present.status_class(status) == css


def test_starvation_warning_needs_several_aborts_in_a_row() -> None:
    assert present.starvation_warning({"consecutiveAborted": 2}, now=NOW) is None
    assert present.starvation_warning(None) is None
    warning = present.starvation_warning(
        {"consecutiveAborted": 5, "lastCompletedAt": "2026-11-27T09:00:00Z"}, now=NOW
    )
    assert warning == (
        "5 runs in a row aborted; no complete resync since 2026-11-27 09:00:00 UTC (3 h ago)"
    )
    never = present.starvation_warning({"consecutiveAborted": 3, "lastCompletedAt": None})
    assert never == "3 runs in a row aborted; no resync has completed yet"


def test_run_history_helpers() -> None:
    runs: list[dict[str, Any]] = [
        {"id": "r3", "status": "running", "kinds": []},
        {"id": "r2", "status": "aborted", "abortedBy": "r3"},
        {"id": "r1", "status": "completed", "kinds": [{"kind": "a", "fetched": 7}, "junk"]},
    ]
    assert present.current_run(runs) == runs[0]
    assert present.current_run(runs[1:]) is None
    assert present.expected_counts(runs) == {"a": 7}
    assert present.abort_links(runs) == {"r3": ["r2"]}
    kinds = present.run_kinds(
        {"kinds": [{"kind": "a", "failed": 2, "errors": ["x", {"message": "m"}]}, 3]}
    )
    assert kinds == [{"kind": "a", "failed": 2, "errors": [{"message": "m"}]}]
    assert present.failed_total([*kinds, {"failed": True}, {"failed": "7"}]) == 2
    assert present.run_kinds({"kinds": "nope"}) == []


def test_datasource_and_values() -> None:
    agent = "port-ocean/fake/0.1.0/fake-org/exporter"
    assert present.datasource_integration(agent) == "fake-org"
    assert present.datasource_integration("shoal-tests") is None
    assert present.datasource_integration(None) is None
    assert present.display_value(["a", 1]) == '["a",1]'
    assert present.display_value("<b>") == "<b>"  # escaped by the template, not here
    assert present.display_value(None) == "—"
    assert present.flatten_metrics({"a": {"b": 1, "c": [1]}, "d": "x"}) == [
        ("a.b", 1),
        ("a.c", "[1]"),
        ("d", "x"),
    ]


def test_csrf_tokens_are_bound_to_their_session() -> None:
    token = csrf_token("key", "session-a")
    assert csrf_valid("key", "session-a", token)
    assert not csrf_valid("key", "session-b", token)
    assert not csrf_valid("other-key", "session-a", token)
    assert not csrf_valid("key", None, token)
    assert not csrf_valid("key", "session-a", None)
    assert not csrf_valid("key", "session-a", "")


def test_config_text_round_trips_yaml_and_json() -> None:
    config = {"deleteDependentEntities": True, "resources": []}
    assert parse_config_text(present.config_text(config)) == config
    assert parse_config_text('{"resources": []}') == {"resources": []}
    assert present.config_text({}) == ""
    assert parse_config_text("resources: []\nwhen: 2026-01-01\n")["when"] == "2026-01-01"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the mapping config is empty"),
        ("resources: [", "invalid YAML at line"),
        ("[1, 2]", "invalid mapping config: expected a JSON object, got list"),
        ("resources: 3", "invalid mapping config: resources"),
        ("resources: []\n1: x\n", "invalid mapping config: [1]: Keys should be strings"),
        ("resources: []\nextra: !!set {a}\n", "not representable as JSON"),
    ],
)
def test_config_errors_are_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
