"""The benchmark's bookkeeping (it measures; nothing here asserts a time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bench import run
from bench._harness import Latencies, Phase
from bench.run import Plan, Row, median_row, render


def _phase(name: str, seconds: float) -> Phase:
    return Phase(name, 10_000, seconds, "completed", catalog_mb=100, integration_mb=50)


def test_a_repeated_row_reports_each_resync_of_its_median_run() -> None:
    latencies = Latencies(trigger_ms=[10.0], abort_ms=[30.0])
    runs = [
        Row("Shoal", 10_000, [_phase("first", 1.0), _phase("unchanged", 0.5)], latencies),
        Row("Shoal", 10_000, [_phase("first", 2.0), _phase("unchanged", 0.3)]),
        Row("Shoal", 10_000, [_phase("first", 1.5), _phase("unchanged", 0.4)]),
    ]
    row = median_row(runs)
    assert [phase.seconds for phase in row.phases] == [1.5, 0.4]
    assert row.phases[0] is runs[2].phases[0]  # a measured run, not an average
    assert row.latencies is latencies
    assert (row.framework, row.persons, row.repeats) == ("Shoal", 10_000, 3)


def test_an_even_number_of_runs_reports_the_slower_middle_one() -> None:
    runs = [Row("Ocean", 10_000, [_phase("first", seconds)]) for seconds in (1.0, 4.0, 2.0, 3.0)]
    assert median_row(runs).phases[0].seconds == 3.0


def test_the_report_gives_each_process_cpu_time_per_entity() -> None:
    first = Phase("first resync (creates)", 10_000, 1.0, "completed", 100, 50, 0.85, 0.2)
    rows = [Row("Shoal", 10_000, [first]), Row("Ocean", 10_000, [])]
    plan = Plan((10_000,), (10_000,), 10_000, 0, 0)
    report = render(rows, plan, started=0.0, notes=[], quick=True)
    assert "| 10,000 | first resync (creates) | 85 / 20 | - |" in report


def _never_started(*_: Any) -> Any:
    raise AssertionError


def test_frameworks_take_turns_and_a_failed_one_runs_no_more(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    order: list[tuple[str, str, bool]] = []

    def fake_bench_size(
        framework: str, _starter: Any, persons: int, workdir: Path, **kw: Any
    ) -> Row:
        order.append((framework, workdir.name, kw["latency"] is not None))
        if framework == "Ocean" and workdir.name == "run-2":
            return Row(framework, persons, error="the Ocean integration exited with 1")
        seconds = {"run-1": 1.0, "run-2": 3.0, "run-3": 2.0}[workdir.name]
        return Row(framework, persons, [_phase("first", seconds)])

    monkeypatch.setattr(run, "bench_size", fake_bench_size)
    contenders = [
        run.Contender("Shoal", _never_started, tmp_path / "shoal", (9, 9)),
        run.Contender("Ocean", _never_started, tmp_path / "ocean", (9, 9)),
    ]
    shoal, ocean = run.bench_alternating(contenders, 10_000, repeats=3, say=lambda _: None)
    assert order == [
        ("Shoal", "run-1", True),
        ("Ocean", "run-1", True),
        ("Shoal", "run-2", False),
        ("Ocean", "run-2", False),
        ("Shoal", "run-3", False),
    ]
    assert shoal.phases[0].seconds == 2.0 and shoal.repeats == 3
    assert ocean.error == "the Ocean integration exited with 1"
