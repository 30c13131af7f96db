"""Single flight, abort-and-restart and coalesce, driven with plain coroutines (no IO)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from shoal.sync import supervisor as supervisor_module
from shoal.sync.run_record import RunRecord, RunStatus
from shoal.sync.supervisor import Policy, Supervisor, Trigger
from shoal.sync.triggers import ScheduleClock, run_schedule


class Harness:
    """Runs whose body waits on a gate; records what the supervisor reports."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.running: list[str] = []
        self.reported: list[tuple[str, RunStatus, str | None]] = []
        self.concurrent = 0
        self.max_concurrent = 0

    async def run(self, record: RunRecord) -> RunRecord:
        gate = self.gates.setdefault(record.id, asyncio.Event())
        self.running.append(record.id)
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            await gate.wait()
        finally:
            self.concurrent -= 1
        record.finish(RunStatus.COMPLETED)
        return record

    async def report(self, record: RunRecord) -> None:
        self.reported.append((record.id, record.status, record.aborted_by))

    def release(self, run_id: str) -> None:
        self.gates.setdefault(run_id, asyncio.Event()).set()


@pytest.fixture
async def harness() -> AsyncIterator[tuple[Harness, Supervisor]]:
    h = Harness()
    supervisor = Supervisor("x", h.run, h.report)
    task = asyncio.create_task(supervisor.run())
    yield h, supervisor
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def started(supervisor: Supervisor, count: int, h: Harness) -> None:
    async with asyncio.timeout(5):
        while len(h.running) < count:
            await asyncio.sleep(0)


async def test_trigger_during_a_run_aborts_it_and_starts_the_next(
    harness: tuple[Harness, Supervisor],
) -> None:
    h, supervisor = harness
    supervisor.request(Trigger("start"))
    await started(supervisor, 1, h)
    first = h.running[0]
    supervisor.request(Trigger("api", "rr_1"))
    await started(supervisor, 2, h)
    second = h.running[1]
    assert h.reported == [(first, RunStatus.ABORTED, second)]
    assert supervisor.current is not None and supervisor.current.trigger == "api"
    assert h.max_concurrent == 1
    h.release(second)
    async with asyncio.timeout(5):
        await supervisor.wait_idle()
    assert [r.status for r in supervisor.finished] == [RunStatus.ABORTED, RunStatus.COMPLETED]


async def test_racing_triggers_leave_exactly_one_surviving_run(
    harness: tuple[Harness, Supervisor],
) -> None:
    h, supervisor = harness
    supervisor.request(Trigger("start"))
    await started(supervisor, 1, h)
    for n in range(5):  # a burst of triggers in the same tick
        supervisor.request(Trigger("api", f"rr_{n}"))
    await started(supervisor, 2, h)
    await asyncio.sleep(0.05)
    assert len(h.running) == 2  # the aborted one and exactly one survivor
    assert supervisor.current is not None and supervisor.current.trigger_request == "rr_4"
    h.release(h.running[1])
    async with asyncio.timeout(5):
        await supervisor.wait_idle()
    assert [r.status for r in supervisor.finished] == [RunStatus.ABORTED, RunStatus.COMPLETED]


async def test_coalesce_runs_once_more_after_the_current_run() -> None:
    h = Harness()
    supervisor = Supervisor("x", h.run, h.report, Policy.COALESCE)
    task = asyncio.create_task(supervisor.run())
    try:
        supervisor.request(Trigger("start"))
        await started(supervisor, 1, h)
        supervisor.request(Trigger("api"))
        supervisor.request(Trigger("ui"))
        await asyncio.sleep(0.05)
        assert len(h.running) == 1  # not aborted
        h.release(h.running[0])
        await started(supervisor, 2, h)
        h.release(h.running[1])
        async with asyncio.timeout(5):
            await supervisor.wait_idle()
        assert [r.status for r in supervisor.finished] == [RunStatus.COMPLETED, RunStatus.COMPLETED]
        assert supervisor.finished[1].trigger == "ui"
        assert h.reported == []
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_shutdown_reports_the_running_run_aborted_once(
    harness: tuple[Harness, Supervisor],
) -> None:
    h, supervisor = harness
    supervisor.request(Trigger("start"))
    await started(supervisor, 1, h)
    await supervisor.shutdown()
    await supervisor.shutdown()
    assert h.reported == [(h.running[0], RunStatus.ABORTED, None)]


async def test_a_finished_run_is_not_aborted_by_the_next_trigger(
    harness: tuple[Harness, Supervisor],
) -> None:
    h, supervisor = harness
    supervisor.request(Trigger("start"))
    await started(supervisor, 1, h)
    h.release(h.running[0])
    async with asyncio.timeout(5):
        await supervisor.wait_idle()
    supervisor.request(Trigger("api"))
    await started(supervisor, 2, h)
    assert h.reported == []
    assert supervisor.finished[0].status is RunStatus.COMPLETED


async def test_a_trigger_during_the_final_report_does_not_abort_a_finished_run() -> None:
    reporting = asyncio.Event()
    reported: list[RunRecord] = []

    async def run(record: RunRecord) -> RunRecord:
        record.finish(RunStatus.COMPLETED)
        await reporting.wait()  # the end is being reported to the catalog
        return record

    async def report(record: RunRecord) -> None:
        reported.append(record)

    supervisor = Supervisor("x", run, report)
    task = asyncio.create_task(supervisor.run())
    try:
        supervisor.request(Trigger("start"))
        async with asyncio.timeout(5):
            await supervisor.started.wait()
        first = supervisor.current
        supervisor.request(Trigger("api"))
        await asyncio.sleep(0.05)
        assert first is not None and first.aborted_by is None  # not cancelled while reporting
        reporting.set()
        async with asyncio.timeout(5):
            await supervisor.wait_idle()
        assert [r.status for r in supervisor.finished] == [RunStatus.COMPLETED, RunStatus.COMPLETED]
        assert reported == []
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_schedule_without_any_earlier_run_fires_after_one_interval() -> None:
    h = Harness()
    supervisor = Supervisor("x", h.run, h.report)
    clock = ScheduleClock(timedelta(seconds=0.2))
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(supervisor.run())
        schedule = group.create_task(run_schedule(supervisor, clock))
        await started(supervisor, 1, h)
        assert supervisor.current is not None and supervisor.current.trigger == "schedule"
        schedule.cancel()
        runner.cancel()


def test_a_failed_run_says_why_its_delete_phase_did_not_run() -> None:
    record = RunRecord("run_1", "x", "api")
    record.error = "the catalog refused the mapping config"
    record.finish(RunStatus.FAILED)
    assert record.delete_phase.status == "skipped"
    assert record.delete_phase.reason == "the catalog refused the mapping config"
    record.finish(RunStatus.ABORTED)  # a second end changes nothing
    assert record.status is RunStatus.FAILED


async def test_only_the_last_records_are_kept_in_memory(
    harness: tuple[Harness, Supervisor], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, supervisor = harness
    monkeypatch.setattr(supervisor_module, "KEPT_RECORDS", 3)
    for n in range(5):
        supervisor.request(Trigger("api"))
        await started(supervisor, n + 1, h)
        h.release(h.running[n])
        async with asyncio.timeout(5):
            await supervisor.wait_idle()
    assert [r.id for r in supervisor.finished] == h.running[2:]


async def test_a_stop_before_the_replacement_starts_records_the_run_stopped_not_replaced() -> None:
    h = Harness()
    supervisor = Supervisor("x", h.run, h.report)
    task = asyncio.create_task(supervisor.run())
    supervisor.request(Trigger("start"))
    await started(supervisor, 1, h)
    supervisor.request(Trigger("api"))  # aborts the run for a replacement ...
    task.cancel()  # ... that never starts: the process stops first (SIGTERM, lease lost)
    with pytest.raises(asyncio.CancelledError):
        await task
    await supervisor.shutdown()
    # not "aborted by" a run that never existed: the integration then owns resyncState
    assert h.reported == [(h.running[0], RunStatus.ABORTED, None)]
    assert h.running == [supervisor.finished[0].id]


async def test_a_stop_finishes_reporting_the_runs_aborted_before() -> None:
    h = Harness()
    blocked = asyncio.Event()

    async def report(record: RunRecord) -> None:
        if not blocked.is_set():  # the first report is still on its way when the process stops
            blocked.set()
            await asyncio.sleep(3600)
        await h.report(record)

    supervisor = Supervisor("x", h.run, report)
    task = asyncio.create_task(supervisor.run())
    supervisor.request(Trigger("start"))
    await started(supervisor, 1, h)
    supervisor.request(Trigger("api"))  # the first run is aborted and reported in the background
    await started(supervisor, 2, h)
    async with asyncio.timeout(5):
        await blocked.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await supervisor.shutdown()
    first, second = h.running
    assert sorted(h.reported) == sorted(
        [(first, RunStatus.ABORTED, second), (second, RunStatus.ABORTED, None)]
    )
