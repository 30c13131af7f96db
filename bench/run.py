"""End-to-end resync benchmark: Shoal vs Port Ocean on the same work, same catalog, same run.

    python -m bench.run             # 10k, 100k and 1M persons (Ocean capped, see --ocean-max)
    python -m bench.run --quick     # 10k and 50k persons, fewer latency samples
    python -m bench.run --no-ocean  # Shoal only

For every size and framework: a fresh ``shoal serve`` (SQLite, temp data dir) and a fresh
integration process running the fake-org workload (the bundled fake integration's generator,
mapping and blueprints). Three resyncs are timed: the first (all creates), an unchanged one and
one with a new generation of the source (~10% updated, ~5% deleted). Then trigger latency
(PATCH → run started, integration idle; push delivery for Shoal, Ocean's polling listener at
its shortest interval) and abort latency (PATCH during a run → the old run has stopped and none
of its writes is still in flight) are sampled. Rows of up to 10,000 persons take about a second
per resync and swing by ±20% from run to run, so they are run three times (``--repeat``), the
two frameworks taking turns so that a machine's drift weighs on both alike, and report each
resync's median run. The table goes to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import httpx

from bench import _ocean
from bench._harness import (
    Catalog,
    Integration,
    Latencies,
    Phase,
    RequestLog,
    measure_abort,
    measure_trigger,
    run_phase,
    wait_for,
    write_control,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"

PHASES = (("first resync (creates)", 0), ("unchanged resync", 0), ("new generation", 1))


@dataclass
class Row:
    framework: str
    persons: int
    phases: list[Phase] = field(default_factory=list)
    latencies: Latencies | None = None
    error: str | None = None
    repeats: int = 1
    """Runs the phases are the median of."""


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    ocean_sizes: tuple[int, ...]
    latency_size: int
    trigger_samples: int
    abort_samples: int


def start_shoal(catalog: Catalog, workdir: Path, env: dict[str, str] | None = None) -> Integration:
    control = workdir / "control.json"
    log = RequestLog(workdir / "requests.jsonl")
    write_control(control, persons=0, generation=0)
    output = (workdir / "integration.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.shoal_worker",
            catalog.url,
            catalog.credentials["clientId"],
            catalog.credentials["clientSecret"],
            str(control),
            str(log.path),
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
        cwd=HERE.parent,
        env=env,
    )
    return Integration(process, control, log, "Shoal")


Starter = Callable[[Catalog, Path], Integration]


def bench_size(
    framework: str,
    starter: Starter,
    persons: int,
    workdir: Path,
    *,
    latency: tuple[int, int] | None,
    say: Callable[[str], None],
) -> Row:
    row = Row(framework, persons)
    workdir.mkdir(parents=True)
    catalog = Catalog.start(workdir / "data")
    integration: Integration | None = None
    try:
        integration = starter(catalog, workdir)
        wait_for(catalog.integration_exists, 120, "the integration to register", 0.1)
        time.sleep(1.5)  # the listener connects (push) or takes its first poll
        timeout = max(600.0, persons / 50)
        for name, generation in PHASES:
            phase = run_phase(
                catalog,
                integration,
                name,
                persons=persons,
                generation=generation,
                timeout=timeout,
            )
            row.phases.append(phase)
            say(
                f"  {framework:5} {persons:>9,} {name:24} {phase.rate:>10,.0f}/s "
                f"{phase.seconds:8.2f} s  catalog {phase.catalog_mb:5.0f} MB  "
                f"integration {phase.integration_mb:5.0f} MB  "
                f"cpu {phase.catalog_cpu:.1f}+{phase.integration_cpu:.1f} s  {phase.status}"
            )
        if latency is not None:
            trigger_samples, abort_samples = latency
            lat = Latencies()
            lat.abort_ms = measure_abort(
                catalog,
                integration,
                abort_samples,
                persons=persons,
                write_for=0.3,
                timeout=timeout,
            )
            lat.trigger_ms = measure_trigger(
                catalog, integration, trigger_samples, persons=persons, timeout=timeout
            )
            row.latencies = lat
            say(
                f"  {framework:5} trigger p50 {Latencies.p50(lat.trigger_ms):.1f} ms "
                f"{[round(x, 1) for x in lat.trigger_ms]}"
            )
            say(
                f"  {framework:5} abort p50 {Latencies.p50(lat.abort_ms):.1f} ms "
                f"{[round(x, 1) for x in lat.abort_ms]}"
            )
    except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
        row.error = str(exc)
        say(f"  {framework} {persons:,}: {exc}")
    finally:
        if integration is not None:
            integration.stop()
        catalog.stop()
    return row


@dataclass(frozen=True)
class Contender:
    """A framework benchmarked at one size: how to start its integration, where its runs
    keep their files, and the latency samples its first run takes (None: none)."""

    framework: str
    starter: Starter
    workdir: Path
    latency: tuple[int, int] | None


def bench_alternating(
    contenders: Sequence[Contender],
    persons: int,
    *,
    repeats: int,
    say: Callable[[str], None],
) -> list[Row]:
    """:func:`bench_size` of each contender ``repeats`` times, each run on a fresh catalog and
    integration, the contenders taking turns (A, B, A, B ...): a machine's speed drifts over the
    minutes such a row takes, and alternating lets the drift weigh on every contender alike.

    A row per contender, in order: each resync's is the median run's (by rate). A row of ~1 s
    swings by ±20% between runs on the same machine, more than what separates two variants.
    Latencies are sampled in a contender's first run only; a run that fails is its row (and
    the contender runs no more).
    """
    runs: dict[str, list[Row]] = {contender.framework: [] for contender in contenders}
    failed: dict[str, Row] = {}
    for attempt in range(repeats):
        for contender in contenders:
            name = contender.framework
            if name in failed:
                continue
            turn = f", run {attempt + 1} of {repeats}" if repeats > 1 else ""
            say(f"{name}, {persons:,} persons{turn}")
            row = bench_size(
                name,
                contender.starter,
                persons,
                contender.workdir / f"run-{attempt + 1}",
                latency=contender.latency if attempt == 0 else None,
                say=say,
            )
            if row.error or any(phase.status != "completed" for phase in row.phases):
                failed[name] = row
            else:
                runs[name].append(row)
    return [failed.get(c.framework) or median_row(runs[c.framework]) for c in contenders]


def median_row(runs: Sequence[Row]) -> Row:
    """One row of ``runs`` (same framework and size): per resync, the run of median rate."""
    first = runs[0]
    phases = []
    for position in range(len(first.phases)):
        ranked = sorted((run.phases[position] for run in runs), key=lambda phase: phase.rate)
        phases.append(ranked[(len(ranked) - 1) // 2])
    latencies = next((run.latencies for run in runs if run.latencies is not None), None)
    return Row(first.framework, first.persons, phases, latencies, repeats=len(runs))


# --- the report --------------------------------------------------------------------------------


def _fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def _ratio(shoal: float | None, ocean: float | None, *, lower_is_better: bool = False) -> str:
    if not shoal or not ocean:
        return "-"
    ratio = ocean / shoal if lower_is_better else shoal / ocean
    return f"{ratio:,.1f}x"


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return f"{cpu}, {os.cpu_count()} cores, {ram} RAM, {platform.system()} {platform.release()}"


def versions() -> str:
    names = ("shoal", "fastapi", "uvicorn", "sqlalchemy", "aiosqlite", "httpx", "orjson", "jq")
    found = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; " + ", ".join(
        found
    )


def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


def _rss(phase: Phase | None) -> str:
    if phase is None:
        return "-"
    return f"{phase.catalog_mb:,.0f} / {phase.integration_mb:,.0f}"


def _cpu(phase: Phase | None) -> str:
    """CPU time per entity served, in µs, of each process (catalog / integration)."""
    if phase is None or not phase.entities:
        return "-"
    per = 1e6 / phase.entities
    return f"{phase.catalog_cpu * per:,.0f} / {phase.integration_cpu * per:,.0f}"


def _phase_pairs(
    shoal: dict[int, Row], ocean: dict[int, Row]
) -> Iterator[tuple[int, str, Phase | None, Phase | None]]:
    """``(persons, resync, Shoal's phase, Ocean's phase)`` for every size and resync, in
    order; a phase a framework did not run (or reach) is None."""
    for persons in sorted(set(shoal) | set(ocean)):
        srow, orow = shoal.get(persons), ocean.get(persons)
        for position, (name, _) in enumerate(PHASES):
            sp = srow.phases[position] if srow and len(srow.phases) > position else None
            op = orow.phases[position] if orow and len(orow.phases) > position else None
            yield persons, name, sp, op


def render(rows: list[Row], plan: Plan, started: float, notes: list[str], quick: bool) -> str:
    shoal = {row.persons: row for row in rows if row.framework == "Shoal"}
    ocean = {row.persons: row for row in rows if row.framework == "Ocean"}
    command = "make bench-quick" if quick else "make bench"
    lines = [
        "# End-to-end resync benchmark: Shoal vs Port Ocean",
        "",
        f"`{command}` (`python -m bench.run{' --quick' if quick else ''}`), "
        f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}, "
        f"{(time.time() - started) / 60:.1f} min in all.",
        "",
        f"- Machine: {machine()}",
        f"- Shoal side: {versions()}",
        f"- Ocean side: {_ocean.version_line() or 'not run'}",
        "",
        "Workload: the fake-org source (persons plus their departments, offices, teams and "
        "projects; ~430-byte entities with 4-5 relations each, pages of 1,000), the fake "
        "integration's mapping (18 jq leaves per person) and blueprints, into `shoal serve` on "
        "SQLite (a fresh data dir per row). Wall time is the integration's own "
        "`lastResyncStart` → `lastResyncEnd` (fetch, map, upsert, delete phase); entities/s "
        "counts every entity the source served. Peak RSS per process and resync.",
        "",
        "| persons | resync | Shoal entities/s | Shoal s | Ocean entities/s | Ocean s "
        "| Shoal/Ocean | Shoal RSS MB catalog / integration "
        "| Ocean RSS MB catalog / integration |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for persons, name, sp, op in _phase_pairs(shoal, ocean):
        lines.append(
            f"| {persons:,} | {name} "
            f"| {_num(sp and sp.rate)} | {_num(sp and sp.seconds, '.2f')} "
            f"| {_num(op and op.rate)} | {_num(op and op.seconds, '.2f')} "
            f"| {_ratio(sp.rate if sp else None, op.rate if op else None)} "
            f"| {_rss(sp)} | {_rss(op)} |"
        )
    lines += [
        "",
        "CPU time per entity served, catalog / integration (each with its threads and child "
        "processes): which side does the work, and how much of it.",
        "",
        "| persons | resync | Shoal CPU µs/entity | Ocean CPU µs/entity |",
        "|---:|---|---:|---:|",
    ]
    for persons, name, sp, op in _phase_pairs(shoal, ocean):
        lines.append(f"| {persons:,} | {name} | {_cpu(sp)} | {_cpu(op)} |")
    lines += [
        "",
        "| latency, p50 | Shoal ms | Ocean ms | Ocean/Shoal | samples (Shoal / Ocean) |",
        "|---|---:|---:|---:|---|",
    ]
    slat = next((r.latencies for r in rows if r.framework == "Shoal" and r.latencies), None)
    olat = next((r.latencies for r in rows if r.framework == "Ocean" and r.latencies), None)
    for label, getter in (
        ("trigger: API PATCH → run started", lambda lat: lat.trigger_ms),
        ("abort: PATCH during a run → old run stopped writing", lambda lat: lat.abort_ms),
    ):
        s = Latencies.p50(getter(slat)) if slat else None
        o = Latencies.p50(getter(olat)) if olat else None
        count = f"{len(getter(slat)) if slat else 0} / {len(getter(olat)) if olat else 0}"
        lines.append(
            f"| {label} | {_num(s, '.1f')} | {_num(o, '.0f')} "
            f"| {_ratio(s, o, lower_is_better=True)} | {count} |"
        )
    problems = [
        f"- {row.framework} {row.persons:,}: {row.error or ''}"
        + "; ".join(f"{p.name}: {p.status}" for p in row.phases if p.status != "completed")
        for row in rows
        if row.error or any(p.status != "completed" for p in row.phases)
    ]
    lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    if problems:
        lines += ["", "Problems in this run:", "", *problems]
    return "\n".join(lines) + "\n"


def write_results(table: str) -> None:
    """Replace the generated part of RESULTS.md; keep the hand-written optimisation log."""
    marker = "<!-- optimisation log: hand-written, kept by bench.run -->"
    kept = ""
    if RESULTS.exists():
        text = RESULTS.read_text()
        if marker in text:
            kept = text[text.index(marker) :]
    RESULTS.write_text(table + ("\n" + kept if kept else ""))


# --- main --------------------------------------------------------------------------------------


def _terminate(_signum: int, _frame: object) -> None:
    raise SystemExit(143)


def parse_sizes(text: str) -> tuple[int, ...]:
    return tuple(int(float(part)) for part in text.split(",") if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer samples")
    parser.add_argument("--sizes", type=parse_sizes, help="persons per row, e.g. 10000,100000")
    parser.add_argument("--no-ocean", action="store_true", help="skip the Ocean rows")
    parser.add_argument("--no-shoal", action="store_true", help="skip the Shoal rows")
    parser.add_argument(
        "--ocean-max",
        type=int,
        default=100_000,
        help="largest size Ocean runs (it takes hours at 1M; default 100000)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per row of up to --repeat-max persons, the median reported (default 3)",
    )
    parser.add_argument(
        "--repeat-max",
        type=int,
        default=10_000,
        help="largest size run --repeat times (default 10000; larger rows run once)",
    )
    parser.add_argument("--ocean-python", help="Python >= 3.12 for the Ocean venv")
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the table goes")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    sizes = args.sizes or ((10_000, 50_000) if args.quick else (10_000, 100_000, 1_000_000))
    ocean_sizes = () if args.no_ocean else tuple(s for s in sizes if s <= args.ocean_max)
    # both frameworks at the same, smallest size: Ocean's runs must end between trigger samples
    latency_size = min(sizes)
    plan = Plan(
        sizes,
        ocean_sizes,
        latency_size,
        trigger_samples=5 if args.quick else 9,
        abort_samples=5 if args.quick else 9,
    )
    started = time.time()
    notes: list[str] = []
    signal.signal(signal.SIGTERM, _terminate)  # clean up the processes on `kill` too

    def say(line: str) -> None:
        print(line, flush=True)

    ocean_starter: Starter | None = None
    if plan.ocean_sizes:
        try:
            ocean_starter = _ocean.prepare(HERE, args.ocean_python, say)
        except _ocean.OceanUnavailable as exc:
            notes.append(f"Ocean rows skipped: {exc}")
            say(f"Ocean skipped: {exc}")

    root = Path(tempfile.mkdtemp(prefix="shoal-bench-"))
    rows: list[Row] = []
    try:
        for persons in plan.sizes:
            latency = (
                (plan.trigger_samples, plan.abort_samples) if persons == plan.latency_size else None
            )
            repeats = args.repeat if persons <= args.repeat_max else 1
            contenders: list[Contender] = []
            if not args.no_shoal:
                contenders.append(
                    Contender("Shoal", start_shoal, root / f"shoal-{persons}", latency)
                )
            if ocean_starter is not None and persons in plan.ocean_sizes:
                last_ocean = persons == max(plan.ocean_sizes)
                ocean_latency = latency or (
                    (plan.trigger_samples, plan.abort_samples)
                    if last_ocean and plan.latency_size not in plan.ocean_sizes
                    else None
                )
                contenders.append(
                    Contender("Ocean", ocean_starter, root / f"ocean-{persons}", ocean_latency)
                )
            rows += bench_alternating(contenders, persons, repeats=repeats, say=say)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"kept {root}")
    notes += _ocean.notes(plan.sizes, plan.ocean_sizes) if ocean_starter else []
    notes += [
        "Shoal/Ocean = Shoal entities/s ÷ Ocean entities/s of the same row, measured in this run; "
        "for latencies, Ocean ms ÷ Shoal ms.",
        *(
            [
                f"Rows of up to {args.repeat_max:,} persons: the median of {args.repeat} runs "
                "(each on a fresh catalog and integration, both frameworks alike, taking "
                "turns: Shoal, Ocean, Shoal ...); the resyncs of such a row take about a second "
                "and vary by ±20% between runs."
            ]
            if any(row.repeats > 1 for row in rows)
            else []
        ),
        f"Latencies were sampled at {plan.latency_size:,} persons: trigger with the integration "
        "idle; abort by a PATCH 0.3 s into a run's writes, measured until the integration "
        "reports the old run aborted and none of its write requests is in flight.",
    ]
    table = render(rows, plan, started, notes, args.quick)
    if args.out == RESULTS:
        write_results(table)
    else:
        args.out.write_text(table)
    print(table)
    return 0 if all(not row.error for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
