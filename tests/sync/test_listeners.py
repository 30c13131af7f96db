"""The push and poll listeners against what a catalog (or a proxy before it) may serve."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from shoal.sync.catalog_client import CatalogClient
from shoal.sync.run_record import RunRecord, RunStatus
from shoal.sync.supervisor import Supervisor, Trigger
from shoal.sync.triggers import poll, push
from tests.sync.test_catalog_client import make_client


def catalog_serving(events: Callable[[int], bytes]) -> tuple[CatalogClient, list[int]]:
    """A client of a catalog whose n-th event stream (from 0) carries ``events(n)``, then ends."""
    opened: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/events")
        opened.append(len(opened))
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, content=events(opened[-1]), headers=headers)

    return make_client(handler), opened


def ready(latest: str | None, at: datetime | None) -> bytes:
    data = {"latestRequest": latest, "latestRequestAt": at and at.isoformat()}
    return b"event: ready\ndata: " + orjson.dumps(data) + b"\n\n"


@contextlib.asynccontextmanager
async def supervised() -> AsyncIterator[tuple[Supervisor, list[RunRecord]]]:
    """A supervisor whose runs wait until cancelled; yields it and the runs it started."""
    started: list[RunRecord] = []

    async def run(record: RunRecord) -> RunRecord:
        started.append(record)
        await asyncio.Event().wait()
        raise AssertionError  # pragma: no cover - cancelled first

    async def report(record: RunRecord) -> None:
        pass

    supervisor = Supervisor("x", run, report)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(supervisor.run())
        try:
            yield supervisor, started
        finally:
            task.cancel()


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_a_request_made_during_a_run_that_started_before_it_is_served_on_connecting() -> None:
    # the stream connects (late: it was failing) while a run that began before the request runs
    async with supervised() as (supervisor, started):
        supervisor.request(Trigger("start"))
        await until(lambda: len(started) == 1)
        made = datetime.now(UTC) + timedelta(seconds=1)  # after the run started
        client, _ = catalog_serving(lambda n: ready("rr_1", made) if n == 0 else b"")
        async with client, asyncio.TaskGroup() as group:
            listener = group.create_task(push.listen_for_events(client, "x", supervisor))
            await until(lambda: len(started) == 2)
            listener.cancel()
        assert started[0].aborted_by == started[1].id  # aborted for the request: not lost
        assert (started[1].trigger, started[1].trigger_request) == ("api", "rr_1")


async def test_a_request_older_than_the_running_run_is_not_served_again() -> None:
    async with supervised() as (supervisor, started):
        made = datetime.now(UTC) - timedelta(seconds=5)
        supervisor.request(Trigger("start"))
        await until(lambda: len(started) == 1)
        client, opened = catalog_serving(lambda n: ready("rr_1", made))
        async with client, asyncio.TaskGroup() as group:
            listener = group.create_task(push.listen_for_events(client, "x", supervisor))
            await until(lambda: len(opened) >= 2)
            listener.cancel()
        assert len(started) == 1 and started[0].status is RunStatus.RUNNING


async def test_a_stream_that_ends_right_after_ready_is_reconnected_with_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(push, "_BACKOFF_START", 0.05)
    async with supervised() as (supervisor, _):
        client, opened = catalog_serving(lambda n: ready(None, None))
        async with client, asyncio.TaskGroup() as group:
            listener = group.create_task(push.listen_for_events(client, "x", supervisor))
            await asyncio.sleep(1.0)
            listener.cancel()
    # backing off from 0.05 s, doubling: about 5 connections in a second, not one per 0.05 s
    assert 3 <= len(opened) <= 8, len(opened)


async def test_polling_serves_a_request_the_catalog_bumps_each_time() -> None:
    # a catalog may keep one request per integration and bump its updatedAt (Ocean compares it)
    bumped: dict[str, str | None] = {"updatedAt": None}

    def handler(request: httpx.Request) -> httpx.Response:
        at = bumped["updatedAt"]
        body = {"id": "rr_main", "updatedAt": at} if at else None
        return httpx.Response(200, json={"ok": True, "request": body})

    client = make_client(handler)
    async with supervised() as (supervisor, started), client, asyncio.TaskGroup() as group:
        since = datetime.now(UTC) - timedelta(hours=1)
        poller = group.create_task(poll.poll_requests(client, "x", supervisor, 0.02, since))
        for bump in range(3):
            bumped["updatedAt"] = (datetime.now(UTC) + timedelta(seconds=bump + 1)).isoformat()
            await until(lambda bump=bump: len(started) == bump + 1)
        poller.cancel()
    assert [run.trigger_request for run in started] == ["rr_main"] * 3
