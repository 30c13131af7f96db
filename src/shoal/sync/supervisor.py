"""Single flight of resyncs, abort-and-restart, and the coalesce policy.

Triggers call :meth:`Supervisor.request` (never blocks). With the default ``restart`` policy a
request during a run cancels that run at once; the run stops at its next await, the supervisor
records it as ``aborted`` (naming the run that replaces it) and starts the new run. With
``coalesce``, requests during a run collapse into one more run after it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from shoal.clock import utcnow
from shoal.sync.run_record import RunRecord, RunStatus, new_run_id

__all__ = ["Policy", "Supervisor", "Trigger"]

log = logging.getLogger("shoal.sync")


class Policy(enum.StrEnum):
    RESTART = "restart"  # a trigger aborts the running resync and starts a new one (default)
    COALESCE = "coalesce"  # a trigger during a run schedules one more run after it


@dataclass(frozen=True, slots=True)
class Trigger:
    source: str  # start | schedule | api | ui | cli | webhook | config | create
    request_id: str | None = None


RunResync = Callable[[RunRecord], Coroutine[Any, Any, RunRecord]]
"""Runs one resync to its end (returns the finished record) or raises CancelledError."""
ReportAborted = Callable[[RunRecord], Coroutine[Any, Any, None]]

KEPT_RECORDS = 100
"""Ended runs whose records a supervisor keeps in memory."""


class Supervisor:
    def __init__(
        self,
        identifier: str,
        run_resync: RunResync,
        report_aborted: ReportAborted,
        policy: Policy = Policy.RESTART,
    ) -> None:
        self._identifier = identifier
        self._run_resync = run_resync
        self._report_aborted = report_aborted
        self.policy = policy
        self._pending: Trigger | None = None
        self._wake = asyncio.Event()
        self._current: tuple[asyncio.Task[RunRecord], RunRecord] | None = None
        self._next_id: str | None = None
        self.last_started: RunRecord | None = None
        self.finished: list[RunRecord] = []
        """The records of the last :data:`KEPT_RECORDS` runs that ended, oldest first (the
        catalog keeps the history; a process that runs for months must not)."""
        self.started = asyncio.Event()  # set whenever a run starts (tests and `once` wait on it)
        self._idle = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None
        self._reporting: dict[str, RunRecord] = {}
        """Aborted runs whose record is being reported in the background, by id."""
        self._idle.set()

    @property
    def busy(self) -> bool:
        """A run is running or about to start."""
        return self._pending is not None or self._current is not None

    @property
    def starting(self) -> bool:
        """A run was asked for and has not started yet."""
        return self._pending is not None

    @property
    def current(self) -> RunRecord | None:
        return None if self._current is None else self._current[1]

    def request(self, trigger: Trigger) -> None:
        """Ask for a resync. Under ``restart``, a running resync is cancelled right now."""
        self._pending = trigger
        self._idle.clear()
        if self._current is not None and self.policy is Policy.RESTART:
            task, record = self._current
            if not task.done() and not record.finished:  # a finished run is only reporting
                self._next_id = self._next_id or new_run_id()
                record.aborted_by = self._next_id
                task.cancel()
        self._wake.set()

    async def wait_idle(self) -> None:
        """Wait until no run is running and none is pending."""
        await self._idle.wait()

    async def run(self) -> None:
        """Start runs as they are requested, one at a time, until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                await self._serve(group)
        finally:
            self._group = None

    async def _serve(self, group: asyncio.TaskGroup) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._current is not None and not await self._finish_current():
                continue  # coalesce: the pending request waits for the current run
            if self._pending is None:
                continue
            trigger, self._pending = self._pending, None
            record = RunRecord(
                self._next_id or new_run_id(),
                self._identifier,
                trigger.source,
                started_at=utcnow(),
                trigger_request=trigger.request_id,
            )
            self._next_id = None
            task = group.create_task(self._run_resync(record), name=record.id)
            task.add_done_callback(lambda _: self._wake.set())
            self._current = (task, record)
            self.last_started = record
            self.started.set()
            log.info("resync %s started (trigger: %s)", record.id, trigger.source)

    async def _finish_current(self) -> bool:
        """Record the end of the current run; False if it is (rightly) still running."""
        if self._current is None:  # shutdown and the loop may both get here: report once
            return True
        task, record = self._current
        if not task.done():
            if self.policy is Policy.COALESCE or self._pending is None:
                return False  # still running; the done-callback wakes us
            await asyncio.wait({task})  # cancelled in request(); wait for it to stop
        self._current = None
        if task.cancelled():
            record.finish(RunStatus.ABORTED)
            log.info(
                "resync %s aborted%s",
                record.id,
                f" by {record.aborted_by}" if record.aborted_by else "",
            )
            if record.aborted_by is not None and self._group is not None:
                # the replacement starts now; the aborted run's record follows in the background
                self._reporting[record.id] = record
                self._group.create_task(
                    self._report_in_background(record), name=f"{record.id}-report"
                )
            else:
                await self._report_aborted(record)
        else:
            log.info("resync %s %s", record.id, record.status.value)
        self.finished.append(record)
        del self.finished[:-KEPT_RECORDS]
        if self._pending is None:
            self._idle.set()
        return True

    async def _report_in_background(self, record: RunRecord) -> None:
        await self._report_aborted(record)
        del self._reporting[record.id]

    async def shutdown(self) -> None:
        """Abort the running resync (if any) and record it once, and finish reporting the runs
        aborted before; used on SIGTERM/SIGINT, and when the lease is lost, once :meth:`run`
        has stopped."""
        self._pending = None
        if self._current is not None:
            task, record = self._current
            if record.aborted_by is not None and record.aborted_by == self._next_id:
                record.aborted_by = None  # its replacement will not start: the process stops
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
            await self._finish_current()
        self._next_id = None
        while self._reporting:  # their background reports stopped with run()
            _, record = self._reporting.popitem()
            await self._report_aborted(record)
