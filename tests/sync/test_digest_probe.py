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


def test_while_backing_off_one_question_at_a_time_probes() -> None:
    probe = DigestProbe()
    assert asks(probe, 2) == [True, True]  # nothing known yet: loads in flight ask side by side
    probe.answered(unchanged=0, asked=1000)
    probe.answered(unchanged=0, asked=1000)
    assert asks(probe, 2) == [False, False]  # backing off (skip 2)
    assert asks(probe, 3) == [True, False, False]  # the first asks; the others do not wait for it
    probe.answered(unchanged=1000, asked=1000)  # the probe finds nearly everything unchanged
    assert asks(probe, 2) == [True, True]


def test_a_withdrawn_question_lets_the_next_load_probe() -> None:
    probe = DigestProbe()
    probe.answered(unchanged=0, asked=1000)
    assert asks(probe, 2) == [False, True]
    assert not probe.ask()  # the probe is in flight
    probe.withdrawn()  # ... and got no answer
    assert probe.ask()
