"""Integration records, resync requests, run history and what integrations report to ingest."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, desc, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shoal.catalog.integrations import (
    ResyncRequest,
    RunStatus,
    apply_resync_state,
    new_integration,
    new_request_id,
    normalize_run,
    patch_integration,
    pending_request,
    run_summary,
    stale_run_update,
)
from shoal.catalog.ocean_runs import (
    OCEAN_RUN_PREFIX,
    apply_kind_metrics,
    awaiting_end,
    end_run,
    is_ocean_run,
    is_stale_failed,
    mark_superseded,
    new_ocean_run_id,
    replace_run,
    run_trigger,
    settle_run,
    start_run,
)
from shoal.catalog.store import schema
from shoal.catalog.store.database import Database
from shoal.clock import from_iso, now_us
from shoal.errors import ConflictError, InvalidInputError, NotFoundError
from shoal.types import JSONObject

__all__ = ["IntegrationStore"]

_i = schema.integrations
_q = schema.resync_requests
_runs = schema.runs
_ocean_run_ids = _runs.c.id.startswith(OCEAN_RUN_PREFIX, autoescape=True)

RUN_HISTORY_KEPT = 500
"""Runs kept per integration; older ones are pruned when new runs are reported."""


def _request(row: Any) -> ResyncRequest:
    return ResyncRequest(row.id, row.integration, row.source, row.actor, row.created_at)


class IntegrationStore:
    def __init__(self, database: Database, base_url: str) -> None:
        self._db = database
        self.base_url = base_url

    async def _get(self, conn: AsyncConnection, identifier: str) -> JSONObject:
        row = (await conn.execute(select(_i.c.body).where(_i.c.identifier == identifier))).first()
        if row is None:
            message = f"Integration with identifier {identifier} was not found"
            raise NotFoundError(message)
        body: JSONObject = row.body
        return body

    async def get(self, identifier: str) -> JSONObject:
        async with self._db.read() as conn:
            record = await self._get(conn, identifier)
            record["runSummary"] = run_summary(await self._recent_runs(conn, identifier, 50))
            return record

    async def list(self) -> builtins.list[JSONObject]:
        async with self._db.read() as conn:
            rows = await conn.execute(select(_i.c.body).order_by(_i.c.identifier))
            records = [row.body for row in rows]
            for record in records:
                record["runSummary"] = run_summary(
                    await self._recent_runs(conn, record["identifier"], 20)
                )
            return records

    async def create(self, body: Any, *, actor: str | None) -> tuple[JSONObject, ResyncRequest]:
        now = now_us()
        record = new_integration(body, now=now, base_url=self.base_url)
        async with self._db.control_write() as conn:
            exists = (
                await conn.execute(
                    select(_i.c.identifier).where(_i.c.identifier == record["identifier"])
                )
            ).first()
            if exists is not None:
                message = f"integration {record['identifier']!r} already exists"
                raise ConflictError(message, code="identifier_taken")
            await conn.execute(
                _i.insert().values(
                    identifier=record["identifier"], body=record, created_at=now, updated_at=now
                )
            )
            # Ocean 0.44-0.48 syncs a fresh integration only when a resync request exists.
            request = await self._add_request(conn, record["identifier"], "create", actor)
        return record, request

    async def patch(
        self, identifier: str, body: Any, *, source: str, actor: str | None
    ) -> tuple[JSONObject, ResyncRequest]:
        """PATCH semantics of Port: merge, bump ``updatedAt``, and record a resync request."""
        now = now_us()
        async with self._db.control_write() as conn:
            record, _ = patch_integration(await self._get(conn, identifier), body, now=now)
            await self._save(conn, record, now)
            request = await self._add_request(conn, identifier, source, actor)
        return record, request

    async def replace_config(
        self, identifier: str, config: JSONObject, *, actor: str | None, trigger: bool
    ) -> tuple[JSONObject, ResyncRequest | None]:
        now = now_us()
        async with self._db.control_write() as conn:
            record, _ = patch_integration(
                await self._get(conn, identifier), {"config": config}, now=now
            )
            await self._save(conn, record, now)
            request = (
                await self._add_request(conn, identifier, "config", actor) if trigger else None
            )
        return record, request

    async def set_resync_state(self, identifier: str, body: Any) -> JSONObject:
        record, _ = await self.report_resync_state(identifier, body, actor=None)
        return record

    async def report_resync_state(
        self, identifier: str, body: Any, *, actor: str | None
    ) -> tuple[JSONObject, builtins.list[JSONObject]]:
        """``PATCH /resync-state``: the new record, and the Ocean runs it started or ended."""
        now = now_us()
        async with self._db.control_write() as conn:
            before = await self._get(conn, identifier)
            record = apply_resync_state(before, body, now=now)
            await self._save(conn, record, now)
            runs = await self._track_ocean_run(conn, before, body, actor=actor, now=now)
        return record, runs

    async def request_resync(
        self, identifier: str, *, source: str, actor: str | None
    ) -> ResyncRequest:
        """Record a trigger without changing the record (UI button, CLI, schedule)."""
        async with self._db.control_write() as conn:
            await self._get(conn, identifier)
            return await self._add_request(conn, identifier, source, actor)

    async def _save(self, conn: AsyncConnection, record: JSONObject, now: int) -> None:
        record.pop("runSummary", None)
        await conn.execute(
            _i.update()
            .where(_i.c.identifier == record["identifier"])
            .values(body=record, updated_at=now)
        )

    async def _add_request(
        self, conn: AsyncConnection, identifier: str, source: str, actor: str | None
    ) -> ResyncRequest:
        """Record a resync request in the write transaction ``conn``. Its time (and so its id,
        which sorts by it) is taken here, under the control write lock, and after the newest
        request of the integration: ids sort in commit order whatever the replicas' clocks, so a
        stream resuming from ``Last-Event-ID`` misses none."""
        newest = (
            await conn.execute(
                select(func.max(_q.c.created_at)).where(_q.c.integration == identifier)
            )
        ).scalar()
        now = max(now_us(), (newest or 0) + 1)
        request = ResyncRequest(new_request_id(now), identifier, source, actor, now)
        await conn.execute(
            _q.insert().values(
                id=request.id, integration=identifier, source=source, actor=actor, created_at=now
            )
        )
        return request

    async def latest_request(self, identifier: str) -> tuple[JSONObject, ResyncRequest | None]:
        async with self._db.read() as conn:
            record = await self._get(conn, identifier)
            row = (
                await conn.execute(
                    select(_q)
                    .where(_q.c.integration == identifier)
                    .order_by(desc(_q.c.created_at))
                    .limit(1)
                )
            ).first()
            return record, None if row is None else _request(row)

    async def requests_after(
        self, identifier: str, request_id: str | None, limit: int = 100
    ) -> builtins.list[ResyncRequest]:
        """Requests created after ``request_id`` (for SSE resumption), oldest first."""
        async with self._db.read() as conn:
            statement = select(_q).where(_q.c.integration == identifier)
            if request_id:
                anchor = (
                    await conn.execute(
                        select(_q.c.created_at, _q.c.id).where(_q.c.id == request_id)
                    )
                ).first()
                if anchor is None:
                    return []
                statement = statement.where(_q.c.id > anchor.id)
            else:
                return []
            rows = await conn.execute(statement.order_by(_q.c.id).limit(limit))
            return [_request(row) for row in rows]

    async def delete(self, identifier: str) -> None:
        async with self._db.control_write() as conn:
            await self._get(conn, identifier)
            for table in (_q, _runs, schema.ingest_events, schema.kind_examples):
                await conn.execute(delete(table).where(table.c.integration == identifier))
            await conn.execute(delete(_i).where(_i.c.identifier == identifier))

    # --- run history -----------------------------------------------------------------------------

    async def _recent_runs(
        self, conn: AsyncConnection, identifier: str, limit: int
    ) -> builtins.list[JSONObject]:
        rows = await conn.execute(
            select(_runs.c.body)
            .where(_runs.c.integration == identifier)
            .order_by(desc(_runs.c.started_at))
            .limit(limit)
        )
        return [row.body for row in rows]

    async def list_runs(self, identifier: str, *, limit: int = 50) -> builtins.list[JSONObject]:
        async with self._db.read() as conn:
            await self._get(conn, identifier)
            return await self._recent_runs(conn, identifier, limit)

    async def get_run(self, identifier: str, run_id: str) -> JSONObject:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(_runs.c.body).where(
                        _runs.c.id == run_id, _runs.c.integration == identifier
                    )
                )
            ).first()
        if row is None:
            message = f"run {run_id!r} of integration {identifier!r} was not found"
            raise NotFoundError(message)
        body: JSONObject = row.body
        return body

    async def report_run(self, identifier: str, run_id: str, body: Any) -> JSONObject:
        """Store what the integration says about one run (it sends the whole record each time)."""
        run = normalize_run(run_id, body)
        now = now_us()
        async with self._db.control_write() as conn:
            await self._get(conn, identifier)
            current = (await conn.execute(select(_runs).where(_runs.c.id == run_id))).first()
            if current is not None and current.integration != identifier:
                message = f"run {run_id!r} belongs to another integration"
                raise ConflictError(message)
            if (
                current is not None
                and current.status != RunStatus.RUNNING.value
                and run["status"] == RunStatus.RUNNING.value
            ):
                return dict(current.body)  # a finished run never goes back to running
            values = {
                "status": run["status"],
                "started_at": from_iso(run["startedAt"]),
                "heartbeat_at": now,
                "body": run,
            }
            if current is None:
                await conn.execute(
                    _runs.insert().values(id=run_id, integration=identifier, **values)
                )
                if not is_ocean_run(run_id):  # it reports its own runs: drop a synthesised one
                    await conn.execute(
                        delete(_runs).where(
                            _runs.c.integration == identifier,
                            _runs.c.status == RunStatus.RUNNING.value,
                            _ocean_run_ids,
                        )
                    )
                await self._prune(conn, identifier)
            else:
                await conn.execute(_runs.update().where(_runs.c.id == run_id).values(**values))
        return run

    async def _prune(self, conn: AsyncConnection, identifier: str) -> None:
        cutoff = (
            await conn.execute(
                select(_runs.c.started_at)
                .where(_runs.c.integration == identifier)
                .order_by(desc(_runs.c.started_at))
                .offset(RUN_HISTORY_KEPT)
                .limit(1)
            )
        ).first()
        if cutoff is not None:
            await conn.execute(
                delete(_runs).where(
                    _runs.c.integration == identifier, _runs.c.started_at <= cutoff.started_at
                )
            )

    async def heartbeat_run(self, identifier: str, run_id: str) -> None:
        async with self._db.control_write() as conn:
            updated = await conn.execute(
                _runs.update()
                .where(_runs.c.id == run_id, _runs.c.integration == identifier)
                .values(heartbeat_at=now_us())
            )
            if updated.rowcount == 0:
                message = f"run {run_id!r} of integration {identifier!r} was not found"
                raise NotFoundError(message)

    async def fail_stale_runs(self, timeout_us: int) -> builtins.list[JSONObject]:
        """Mark running runs whose heartbeat stopped as failed (and the integration's state)."""
        now = now_us()
        failed: builtins.list[JSONObject] = []
        async with self._db.control_write() as conn:
            rows = (
                await conn.execute(
                    select(_runs).where(
                        _runs.c.status == RunStatus.RUNNING.value,
                        _runs.c.heartbeat_at < now - timeout_us,
                    )
                )
            ).all()
            for row in rows:
                run = stale_run_update(row.body, now=now, last_heartbeat=row.heartbeat_at)
                await conn.execute(
                    _runs.update()
                    .where(_runs.c.id == row.id)
                    .values(status=run["status"], body=run)
                )
                record_row = (
                    await conn.execute(select(_i.c.body).where(_i.c.identifier == row.integration))
                ).first()
                if (
                    record_row is not None
                    and record_row.body.get("resyncState", {}).get("status") == "running"
                ):
                    record = apply_resync_state(
                        record_row.body,
                        {"status": "failed", "lastResyncEnd": run["endedAt"]},
                        now=now,
                    )
                    await self._save(conn, record, now)
                failed.append({**run, "integration": row.integration})
        return failed

    # --- ingest (Ocean's metrics, heartbeats and kind examples) ---------------------------------

    async def record_kind_metrics(
        self, identifier: str, events: Sequence[tuple[str, str, JSONObject]]
    ) -> builtins.list[JSONObject]:
        """Store Ocean's metrics events ``(event id, kind, body)``, all or none (an unknown
        integration or an over-long id refuses the batch); returns the Ocean runs they
        updated."""
        for event_id, kind_key, _ in events:
            for what, value, longest in (("event id", event_id, 200), ("kind", kind_key, 1000)):
                if len(value) > longest:
                    message = f"the {what} {value[:40]!r}… is longer than {longest} characters"
                    raise InvalidInputError(message)
        now = now_us()
        table = schema.ingest_events
        updated: dict[str, JSONObject] = {}
        insert = self._db.insert(table)
        upsert = insert.on_conflict_do_update(
            index_elements=[table.c.integration, table.c.event_id, table.c.kind_key],
            set_={"body": insert.excluded.body, "updated_at": insert.excluded.updated_at},
        )
        rows = [
            {"integration": identifier, "event_id": event_id, "kind_key": kind_key,
             "body": body, "updated_at": now}
            for event_id, kind_key, body in events
        ]  # fmt: skip
        async with self._db.control_write() as conn:
            await self._get(conn, identifier)
            if rows:
                await conn.execute(upsert, rows)  # one statement for the batch
            recent = await self._ocean_runs(conn, identifier)  # once: read, fold in, write once
            for event_id, _, body in events:
                found = _run_for_event(recent, event_id)
                if found is None:
                    continue
                run = apply_kind_metrics(found, {**body, "eventId": event_id})
                recent = [run if other is found else other for other in recent]
                updated[run["id"]] = run
            for run in updated.values():
                await self._update_run(conn, run, now, alive=run["status"] == "running")
        return list(updated.values())

    async def kind_metrics(
        self, identifier: str, event_id: str | None = None
    ) -> builtins.list[JSONObject]:
        table = schema.ingest_events
        async with self._db.read() as conn:
            if event_id is None:
                latest = (
                    await conn.execute(
                        select(table.c.event_id)
                        .where(table.c.integration == identifier)
                        .order_by(desc(table.c.updated_at))
                        .limit(1)
                    )
                ).first()
                if latest is None:
                    return []
                event_id = latest.event_id
            rows = await conn.execute(
                select(table.c.body)
                .where(table.c.integration == identifier, table.c.event_id == event_id)
                .order_by(table.c.kind_key)
            )
            return [row.body for row in rows]

    async def record_examples(self, identifier: str, kind: str, examples: Any) -> None:
        table = schema.kind_examples
        now = now_us()
        async with self._db.control_write() as conn:
            await self._get(conn, identifier)
            insert = self._db.insert(table)
            await conn.execute(
                insert.values(
                    integration=identifier, kind=kind, body=examples, updated_at=now
                ).on_conflict_do_update(
                    index_elements=[table.c.integration, table.c.kind],
                    set_={"body": insert.excluded.body, "updated_at": insert.excluded.updated_at},
                )
            )

    async def examples(self, identifier: str, kind: str) -> Any:
        """The raw examples of ``kind`` the integration sent last (``[]`` if none)."""
        table = schema.kind_examples
        async with self._db.read() as conn:
            await self._get(conn, identifier)
            row = (
                await conn.execute(
                    select(table.c.body).where(
                        table.c.integration == identifier, table.c.kind == kind
                    )
                )
            ).first()
        return [] if row is None else row.body

    # --- Ocean runs, synthesised from resync state and metrics (see shoal.catalog.ocean_runs) ---

    async def _track_ocean_run(
        self,
        conn: AsyncConnection,
        before: JSONObject,
        state: Any,
        *,
        actor: str | None,
        now: int,
    ) -> builtins.list[JSONObject]:
        identifier: str = before["identifier"]
        status = state.get("status")
        if status is None:
            return []
        own = (
            await conn.execute(
                select(_runs.c.id)
                .where(_runs.c.integration == identifier, ~_ocean_run_ids)
                .limit(1)
            )
        ).first()
        if own is not None:  # a Shoal integration: it reports its runs itself
            return []
        recent = await self._ocean_runs(conn, identifier)
        running = [run for run in recent if run["status"] == RunStatus.RUNNING.value]
        if status != RunStatus.RUNNING.value:
            late = [run for run in recent if awaiting_end(run, now=now)]
            if late and (status == RunStatus.ABORTED.value or not running):
                # the late end report of a run that a newer one replaced (oldest first): Ocean
                # aborts the older resync, so its report says aborted; a completed or failed
                # one is the running run's (after a restart, the replaced run's process is gone)
                ended = settle_run(late[-1], status, state, now=now)
            elif running:
                ended = end_run(running[0], status, state, now=now)
            elif recent and is_stale_failed(recent[0]):  # it was alive after all
                ended = settle_run(recent[0], status, state, now=now)
            else:  # Ocean reports an abort twice at shutdown; the second is a no-op
                return []
            await self._update_run(conn, ended, now, alive=False)
            return [ended]
        run_id = new_ocean_run_id(now)
        changed: builtins.list[JSONObject] = []
        for old in running:  # Ocean has not reported its end yet: the newer run replaced it
            ended = replace_run(old, run_id, now=now)
            await self._update_run(conn, ended, now, alive=False)
            changed.append(ended)
        latest = (
            await conn.execute(
                select(_q)
                .where(_q.c.integration == identifier)
                .order_by(desc(_q.c.created_at))
                .limit(1)
            )
        ).first()
        pending = pending_request(None if latest is None else _request(latest), before)
        trigger, request_id = run_trigger(
            pending, actor, previous=before.get("resyncState") or {}, state=state
        )
        if pending is not None and recent and not running:
            replaced = mark_superseded(recent[0], pending.created_at, run_id)
            if replaced is not None:
                await self._update_run(conn, replaced, now, alive=False)
                changed.append(replaced)
        run = start_run(
            run_id, identifier, state, now=now, trigger=trigger, trigger_request=request_id
        )
        await conn.execute(
            _runs.insert().values(
                id=run_id,
                integration=identifier,
                status=run["status"],
                started_at=from_iso(run["startedAt"]),
                heartbeat_at=now,
                body=run,
            )
        )
        await self._prune(conn, identifier)
        changed.append(run)
        return changed

    async def _ocean_runs(
        self, conn: AsyncConnection, identifier: str, limit: int = 5
    ) -> builtins.list[JSONObject]:
        rows = await conn.execute(
            select(_runs.c.body)
            .where(_runs.c.integration == identifier, _ocean_run_ids)
            .order_by(desc(_runs.c.started_at))
            .limit(limit)
        )
        return [row.body for row in rows]

    async def _update_run(
        self, conn: AsyncConnection, run: JSONObject, now: int, *, alive: bool
    ) -> None:
        values: dict[str, Any] = {"status": run["status"], "body": run}
        if alive:
            values["heartbeat_at"] = now
        await conn.execute(_runs.update().where(_runs.c.id == run["id"]).values(**values))

    async def heartbeat_ocean_run(self, identifier: str, event_id: str) -> bool:
        """Ocean's ``POST {metrics}/heartbeat``: keeps its running resync from going stale."""
        async with self._db.control_write() as conn:
            run = _run_for_event(await self._ocean_runs(conn, identifier), event_id)
            if run is None or run["status"] != RunStatus.RUNNING.value:
                return False
            await conn.execute(
                _runs.update().where(_runs.c.id == run["id"]).values(heartbeat_at=now_us())
            )
            return True


def _run_for_event(runs: builtins.list[JSONObject], event_id: str) -> JSONObject | None:
    """The run of Ocean's resync ``event_id`` among ``runs``: known by its id, else the running
    one not tied to an event yet."""
    for run in runs:
        if run.get("oceanEventId") == event_id:
            return run
    for run in runs:
        if run["status"] == RunStatus.RUNNING.value and not run.get("oceanEventId"):
            return run
    return None
