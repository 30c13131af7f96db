"""When a resync asks a Shoal catalog about unchanged entities by digest before sending them."""

from __future__ import annotations

from shoal.sync.resync import DigestProbe


def asks(probe: DigestProbe, loads: int) -> list[bool]:
    return [probe.ask() for _ in range(loads)]


def test_keeps_asking_while_nearly_everything_is_unchanged() -> None:
    probe = DigestProbe()
    for _ in range(5):
        assert probe.ask()
        probe.answered(unchanged=990, asked=1000)


def test_backs_off_while_much_has_changed_then_asks_again() -> None:
    probe = DigestProbe()
    skipped: list[int] = []
    for _ in range(7):
        run = 0
        while not probe.ask():
            run += 1
        skipped.append(run)
        probe.answered(unchanged=850, asked=1000)  # ~15% changed: the question does not pay
    # loads skipped before each question: none, then doubling up to MAX_SKIP
    assert skipped == [0, 1, 2, 4, 8, 16, DigestProbe.MAX_SKIP]


def test_a_good_answer_ends_the_back_off() -> None:
    probe = DigestProbe()
    probe.answered(unchanged=0, asked=1000)
    assert asks(probe, 2) == [False, True]
    probe.answered(unchanged=1000, asked=1000)
    assert asks(probe, 3) == [True, True, True]


def test_a_catalog_without_the_route_is_never_asked_again() -> None:
    probe = DigestProbe()
    probe.supported = False
    assert asks(probe, 3) == [False, False, False]
