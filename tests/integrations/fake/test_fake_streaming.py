"""Streaming a large organisation: flat memory, and a printed generation rate.

tracemalloc makes every allocation in the person loop cost microseconds (it looks up the line
number of the allocating instruction), so it watches a 20-page window for the peak; the full
million-person stream is watched with ``sys.getallocatedblocks()``, which costs nothing.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc

import pytest

from shoal.integrations.fake import PERSON_KIND, FakeSettings, generate_persons, iter_pages

MIB = 1024 * 1024


def test_streaming_peak_memory_does_not_grow_with_pages() -> None:
    settings = FakeSettings(persons=1_000_000, page_size=500, item_size=500)
    pages = iter_pages(settings, PERSON_KIND)
    tracemalloc.start()
    try:
        for _ in range(3):  # the first pages fill the caches (tables, padding calibration)
            next(pages)
        _, early_peak = tracemalloc.get_traced_memory()
        for _ in range(20):
            next(pages)
        _, late_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One page of 500 persons is about 0.35 MiB: keeping 20 pages would add ~7 MiB.
    assert late_peak < 20 * MIB
    assert late_peak - early_peak < 1 * MIB, (early_peak, late_peak)


@pytest.mark.slow
def test_a_million_persons_stream_with_flat_memory() -> None:
    settings = FakeSettings(persons=1_000_000, page_size=1000, item_size=500)
    gc.collect()
    samples: list[int] = []
    pages = 0
    last_id = None
    for page in iter_pages(settings, PERSON_KIND):
        pages += 1
        last_id = page[-1]["id"]
        if pages % 50 == 0:
            samples.append(sys.getallocatedblocks())
    assert pages == 1000
    assert last_id == "person-999999"
    # A page of 1000 persons is ~16,000 blocks; a million retained persons would be ~16 million.
    assert max(samples) - min(samples) < 200_000, samples


def test_generation_rate(capsys: pytest.CaptureFixture[str]) -> None:
    """Not a pass/fail check: prints persons generated per second on this machine."""
    count = 200_000
    for item_size in (200, 2000):
        settings = FakeSettings(persons=1_000_000, item_size=item_size)
        started = time.perf_counter()
        generated = sum(1 for _ in generate_persons(settings, 0, count))
        elapsed = time.perf_counter() - started
        assert generated == count
        with capsys.disabled():
            print(f"\nfake: {count / elapsed:,.0f} persons/s (item_size={item_size})")
