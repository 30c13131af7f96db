"""Scheduled resyncs every ``scheduledResyncInterval`` minutes, anchored to the last run."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from shoal.clock import utcnow
from shoal.sync.supervisor import Supervisor, Trigger

__all__ = ["ScheduleClock", "run_schedule"]

log = logging.getLogger("shoal.sync")


@dataclass(slots=True)
class ScheduleClock:
    """When the next scheduled resync is due.

    The anchor is the start of the last run, whatever triggered it, as recorded in the catalog
    at startup and by the supervisor afterwards: a restart does not reset the schedule, and a
    manual resync pushes the next scheduled one back by a full interval.
    """

    interval: timedelta
    anchor: datetime | None = None

    def next_due(self, supervisor: Supervisor, now: datetime) -> datetime:
        if supervisor.last_started is not None:
            return supervisor.last_started.started_at + self.interval
        if self.anchor is not None:
            return self.anchor + self.interval
        return now + self.interval


async def run_schedule(supervisor: Supervisor, clock: ScheduleClock) -> None:
    """Request a resync whenever one is due, until cancelled."""
    if clock.anchor is None:  # never resynced: the first scheduled run is one interval from now
        clock.anchor = utcnow()
    while True:
        supervisor.started.clear()
        now = utcnow()
        delay = (clock.next_due(supervisor, now) - now).total_seconds()
        if delay <= 0:
            if supervisor.current is not None:
                # A resync is running: it is as fresh as the scheduled one would be, so the
                # schedule never aborts it (which, with a short interval, would starve every run).
                await supervisor.wait_idle()
                continue
            log.info("scheduled resync is due")
            supervisor.request(Trigger("schedule"))
            await supervisor.started.wait()
            continue
        try:  # a run started by anything else moves the schedule: wake up and recompute
            await asyncio.wait_for(supervisor.started.wait(), delay)
        except TimeoutError:
            continue
