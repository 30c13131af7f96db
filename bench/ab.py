"""Before/after ratios of an optimisation, measured in one run (for RESULTS.md's log).

    python -m bench.ab --persons 100000 --rounds 2 before=/tmp/variant/src after=src ...

Each ``NAME=DIR`` is a source tree holding the ``shoal`` package (``src`` is this checkout; a
"before" tree is a copy with one optimisation taken out). Rounds interleave the variants, each
time with a fresh catalog and Shoal worker importing ``shoal`` from that tree (``PYTHONPATH``),
running the benchmark's three resyncs. Prints the median entities/s per variant and resync and
its ratio to the first variant's (variant ÷ first: name the baseline first). With
``--aborts N`` each round then samples N abort latencies, as ``make bench`` does, and their
p50 is a fourth column.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench._harness import Catalog, measure_abort, run_phase, wait_for
from bench.run import PHASES, start_shoal


def measure(source: Path, persons: int, workdir: Path, aborts: int = 0) -> list[float]:
    """The entities/s of the benchmark's three resyncs, then the p50 of ``aborts`` abort
    latencies in ms (as ``make bench`` samples them), if any."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    workdir.mkdir(parents=True)
    catalog = Catalog.start(workdir / "data", env=env)
    integration = None
    try:
        integration = start_shoal(catalog, workdir, env=env)
        wait_for(catalog.integration_exists, 120, "the integration to register", 0.1)
        time.sleep(1.5)
        rates = []
        for name, generation in PHASES:
            phase = run_phase(
                catalog, integration, name, persons=persons, generation=generation, timeout=3600
            )
            if phase.status != "completed":
                message = f"{source}: {name}: {phase.status}"
                raise RuntimeError(message)
            rates.append(phase.rate)
        if aborts:
            latencies = measure_abort(
                catalog, integration, aborts, persons=persons, write_for=0.3, timeout=3600
            )
            rates.append(statistics.median(latencies))
        return rates
    finally:
        if integration is not None:
            integration.stop()
        catalog.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--aborts",
        type=int,
        default=0,
        help="abort latency samples per round after the resyncs (their p50 is a fourth column)",
    )
    parser.add_argument("variants", nargs="+", help="NAME=DIR (a tree holding shoal/)")
    args = parser.parse_args(argv)
    variants = [
        (name, Path(path).resolve()) for name, _, path in (v.partition("=") for v in args.variants)
    ]
    root = Path(tempfile.mkdtemp(prefix="shoal-ab-"))
    results: dict[str, list[list[float]]] = {name: [] for name, _ in variants}
    try:
        for round_ in range(args.rounds):
            for name, source in variants:
                rates = measure(source, args.persons, root / f"{name}-{round_}", args.aborts)
                results[name].append(rates)
                shown = "  ".join(f"{rate:>9,.0f}" for rate in rates)
                print(f"round {round_ + 1} {name:28} {shown}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    columns = [f"{phase} entities/s" for phase, _ in PHASES]
    if args.aborts:
        columns.append(f"abort p50 of {args.aborts}, ms")
    medians = {
        name: [statistics.median(run[i] for run in runs) for i in range(len(columns))]
        for name, runs in results.items()
    }
    first = variants[0][0]
    print()
    print(
        f"| variant ({args.persons:,} persons, median of {args.rounds}) | "
        + " | ".join(f"{column} | ÷ {first}" for column in columns)
        + " |"
    )
    print("|---|" + "---:|---:|" * len(columns))
    for name, rates in medians.items():
        cells = " | ".join(
            f"{rate:,.0f} | {rate / medians[first][i]:.2f}x" for i, rate in enumerate(rates)
        )
        print(f"| {name} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
