"""Trigger sources: each is a long-running coroutine that calls ``Supervisor.request``.

They never run resyncs themselves, so cancelling a resync never stops a listener, and stopping
a listener never half-stops a resync.
"""

from shoal.sync.triggers.poll import poll_requests
from shoal.sync.triggers.push import listen_for_events
from shoal.sync.triggers.schedule import ScheduleClock, run_schedule
from shoal.sync.triggers.webhook import serve_webhook

__all__ = ["ScheduleClock", "listen_for_events", "poll_requests", "run_schedule", "serve_webhook"]
