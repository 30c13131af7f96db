"""Runs an integration against a catalog: setup, the supervisor, its triggers and state reports."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from shoal.clock import parse_wire_time, utcnow
from shoal.concurrency import both
from shoal.errors import CatalogError, CatalogUnavailableError, ConfigError, ShoalError
from shoal.sync.catalog_client import PORT_LIMITS, SHOAL_LIMITS, CatalogClient
from shoal.sync.integration import Integration
from shoal.sync.mapping import MappingConfig, parse_mapping_config
from shoal.sync.resync import Resync, ResyncOptions
from shoal.sync.run_record import RunRecord, RunStatus
from shoal.sync.settings import RunnerSettings
from shoal.sync.supervisor import Supervisor, Trigger
from shoal.sync.triggers import (
    ScheduleClock,
    listen_for_events,
    poll_requests,
    run_schedule,
    serve_webhook,
)
from shoal.types import JSONObject

__all__ = ["IntegrationRunner", "LeaseLostError"]

log = logging.getLogger("shoal.sync")

STOP_MARGIN = 0.1
"""The share of a lease's lifetime before it ends at which a holder whose renewal is not
confirmed counts it lost: its run has that long to stop writing (1.5 s of the default 15 s;
an abort takes tens of milliseconds)."""


class LeaseLostError(ShoalError):
    """This process no longer holds the integration's run lease; it stops and stands by."""


def _iso(value: Any) -> Any:
    return None if value is None else value.isoformat()


class IntegrationRunner:
    """One integration process: it owns the catalog client, the supervisor and the listeners."""

    def __init__(
        self,
        integration: Integration,
        settings: RunnerSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``transport``, if given, carries the catalog client's requests (httpx's default
        otherwise)."""
        self.integration = integration
        self.settings = settings
        self.identifier = settings.identifier or integration.type
        limits = PORT_LIMITS if settings.target_is_port else SHOAL_LIMITS
        if not settings.target_is_port and settings.batch_size != limits.max_batch_entities:
            limits = replace(limits, max_batch_entities=settings.batch_size)
        if settings.client_id is None or settings.client_secret is None:
            message = "the integration needs a client id and secret"
            raise ConfigError(message)
        self.client = CatalogClient(
            settings.catalog_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            integration_identifier=self.identifier,
            integration_type=integration.type,
            integration_version=integration.version,
            limits=limits,
            transport=transport,
        )
        self.supervisor = Supervisor(
            self.identifier, self._run_resync, self._report_ended, settings.policy
        )
        self.schedule: ScheduleClock | None = None
        self.process_started = utcnow()
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        """Names this process in the integration's run lease."""
        self._lease_lost = False
        self.last_resync_start: datetime | None = None
        """The last resync start the catalog recorded when this process set up."""

    # --- setup -----------------------------------------------------------------------------------

    async def setup(self) -> JSONObject:
        """Create the integration record, its default blueprints and mapping on first run."""
        record = await self.client.get_integration(self.identifier)
        if record is None:
            body: JSONObject = {
                "installationId": self.identifier,
                "installationAppType": self.integration.type,
                "version": self.integration.version,
                "config": self.integration.default_mapping or {"resources": []},
                "changelogDestination": self._changelog_destination(),
                "createPortResourcesOrigin": "Default",
            }
            record = await self.client.create_integration(body)
            log.info("created integration %s", self.identifier)
        await self._ensure_blueprints()
        await self.integration.run_start_hooks()
        interval = self.settings.interval_minutes
        if interval is None:
            configured = (record.get("spec") or {}).get("scheduledResyncInterval") or record.get(
                "scheduledResyncInterval"
            )
            interval = (
                float(configured)
                if isinstance(configured, int | float) and configured > 0
                else None
            )
        last = (record.get("resyncState") or {}).get("lastResyncStart")
        self.last_resync_start = parse_wire_time(last)
        if interval:
            self.schedule = ScheduleClock(timedelta(minutes=interval), self.last_resync_start)
        return record

    def _changelog_destination(self) -> JSONObject:
        if self.settings.listener == "webhook":
            url = (
                self.settings.webhook_url
                or f"http://{self.settings.webhook_host}:{self.settings.webhook_port}/resync"
            )
            return {"type": "WEBHOOK", "url": url}
        return {}

    async def _ensure_blueprints(self) -> None:
        """Create missing default blueprints bare first, then add relations (any order works)."""
        missing = [
            bp
            for bp in self.integration.default_blueprints
            if await self.client.get_blueprint(bp["identifier"]) is None
        ]
        for blueprint in missing:
            await self.client.create_blueprint(
                {k: v for k, v in blueprint.items() if k != "relations"}
            )
        for blueprint in missing:
            if blueprint.get("relations"):
                await self.client.patch_blueprint(blueprint["identifier"], blueprint)

    # --- one resync ------------------------------------------------------------------------------

    def _state(self, status: str, record: RunRecord) -> JSONObject:
        state: JSONObject = {"status": status}
        if status == "running":
            state["lastResyncStart"] = _iso(record.started_at)
            state["lastResyncEnd"] = None
        else:
            state["lastResyncEnd"] = _iso(record.ended_at)
        if self.schedule is not None:
            state["intervalInMinuets"] = self.schedule.interval.total_seconds() / 60
            state["nextResync"] = _iso(record.started_at + self.schedule.interval)
        else:
            state["intervalInMinuets"] = None
            state["nextResync"] = None
        return state

    async def _run_resync(self, record: RunRecord) -> RunRecord:
        """The supervisor's run function: never raises but CancelledError."""
        try:
            config = await self._start(record)
            resync = Resync(
                record=record,
                integration=self.integration,
                client=self.client,
                config=config,
                options=ResyncOptions(
                    progress_interval=self.settings.progress_interval,
                    compare_before_write=self.settings.target_is_port,
                    confirm_by_digest=not self.settings.target_is_port,
                ),
            )
            await resync.run()
        except (CatalogError, CatalogUnavailableError, ConfigError) as exc:
            record.error = str(exc)
            record.finish(RunStatus.FAILED)
            log.error("resync %s failed: %s", record.id, exc)
        except Exception as exc:
            log.exception("resync %s crashed", record.id)
            record.error = f"{type(exc).__name__}: {exc}"
            record.finish(RunStatus.FAILED)
        self._note_interval(record)
        await self._report_final(record)
        return record

    async def _start(self, record: RunRecord) -> MappingConfig:
        """Report the run as running while its mapping config is read. The report completes
        even when the config cannot be read: the run then fails, and its final report must not
        race a "running" one still on its way."""

        async def config_or_error() -> MappingConfig | Exception:
            try:
                return await self._mapping_config()
            except Exception as exc:  # noqa: BLE001 - raised below, once the run is announced
                return exc

        config, _ = await both(config_or_error(), self._announce(record))
        if isinstance(config, Exception):
            raise config
        return config

    async def _announce(self, record: RunRecord) -> None:
        # the run first: a catalog that sees runs reported never synthesises one (Ocean's)
        await self.client.report_run(self.identifier, record.to_json())
        await self.client.patch_resync_state(self.identifier, self._state("running", record))

    def _note_interval(self, record: RunRecord) -> None:
        if self.schedule is None or record.duration is None:
            return
        if record.duration > self.schedule.interval.total_seconds():
            warning = (
                f"this resync took {record.duration:.0f} s, longer than the scheduled interval of "
                f"{self.schedule.interval.total_seconds() / 60:g} min; "
                "widen scheduledResyncInterval"
            )
            record.warnings.append(warning)
            log.warning("%s", warning)

    async def _mapping_config(self) -> MappingConfig:
        record = await self.client.get_integration(self.identifier)
        if record is None:
            message = f"integration {self.identifier!r} disappeared from the catalog"
            raise ConfigError(message)
        return parse_mapping_config(record.get("config") or {"resources": []})

    async def _report_final(self, record: RunRecord) -> None:
        try:
            await self.client.report_run(self.identifier, record.to_json())
            replaced = record.status is RunStatus.ABORTED and record.aborted_by is not None
            if replaced or self._lease_lost:
                # The run that replaced this one (here or in the process that took the lease
                # over) owns resyncState now: reporting "aborted" would overwrite its "running".
                return
            await self.client.patch_resync_state(
                self.identifier, self._state(record.status.value, record)
            )
        except (CatalogError, CatalogUnavailableError) as exc:
            log.error("could not report the end of resync %s: %s", record.id, exc)

    async def _report_ended(self, record: RunRecord) -> None:
        """Record a run the supervisor aborted (its own reports stopped with it)."""
        await self._report_final(record)

    # --- serving ---------------------------------------------------------------------------------

    async def serve(self) -> None:
        """Run until cancelled. While another process holds the integration's lease this one
        stands by; once it holds the lease it sets up, resyncs on start, and serves triggers."""
        while True:
            expires = await self._acquire_lease()
            try:
                await self._serve_active(expires)
            except* LeaseLostError as lost:
                log.warning("%s; standing by", lost.exceptions[0])

    async def _serve_active(self, lease_expires: float) -> None:
        try:
            await self.setup()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._keep_lease(lease_expires), name="lease")
                group.create_task(self.supervisor.run(), name="supervisor")
                self._start_listener(group)
                if self.schedule is not None:
                    group.create_task(run_schedule(self.supervisor, self.schedule), name="schedule")
                if self.settings.resync_on_start:
                    self.supervisor.request(Trigger("start"))
        finally:
            await asyncio.shield(self._stand_down())

    async def _stand_down(self) -> None:
        await self.supervisor.shutdown()
        try:
            await self.client.release_lease(self.identifier, self.holder)
        except (CatalogError, CatalogUnavailableError) as exc:
            log.info(
                "could not release the lease of %s (it expires by itself): %s", self.identifier, exc
            )

    async def _acquire_lease(self) -> float:
        """Wait until this process holds the integration's run lease; returns when it lapses
        unless renewed (on the event loop's clock)."""
        self._lease_lost = False
        announced = False
        loop = asyncio.get_running_loop()
        while True:
            sent = loop.time()  # the catalog counts the lifetime from no earlier than this
            try:
                if await self.client.acquire_lease(
                    self.identifier, self.holder, self.settings.lease_ttl
                ):
                    return sent + self.settings.lease_ttl
            except (CatalogError, CatalogUnavailableError) as exc:
                log.warning("could not ask for the lease of %s: %s", self.identifier, exc)
            if not announced:
                log.info("another process runs %s; standing by", self.identifier)
                announced = True
            await asyncio.sleep(self.settings.lease_ttl / 3)

    async def _keep_lease(self, expires: float) -> None:
        """Renew the lease, granted until ``expires``, a third of its lifetime after each grant
        (at once if setting up took longer); raise LeaseLostError once it is gone.

        A renewal that cannot complete :data:`STOP_MARGIN` of a lifetime before the last
        confirmed expiry counts as lost: the run then has that long to stop writing before a
        standby process may hold the lease, and two processes must never write at once.
        """
        loop = asyncio.get_running_loop()
        ttl = self.settings.lease_ttl
        renew_at = expires - 2 * ttl / 3
        while True:
            await asyncio.sleep(max(0.0, renew_at - loop.time()))
            sent = loop.time()  # the catalog counts the renewed lifetime from no earlier than this
            renew_at = sent + ttl / 3
            lost_at = expires - STOP_MARGIN * ttl
            try:
                async with asyncio.timeout(max(0.0, lost_at - sent)):
                    lease = await self.client.acquire_lease(self.identifier, self.holder, ttl)
            except (CatalogError, CatalogUnavailableError) as exc:
                if loop.time() < lost_at:
                    log.warning("could not renew the lease of %s: %s", self.identifier, exc)
                    continue
                self._lease_lost = True
                message = (
                    f"the lease of {self.identifier} expired while the catalog was unreachable"
                )
                raise LeaseLostError(message) from exc
            except TimeoutError:
                self._lease_lost = True
                message = f"the lease of {self.identifier} expired before the catalog confirmed it"
                raise LeaseLostError(message) from None
            if lease is None:
                self._lease_lost = True
                message = f"another process took over {self.identifier}"
                raise LeaseLostError(message)
            expires = sent + ttl

    def _start_listener(self, group: asyncio.TaskGroup) -> None:
        listener = self.settings.listener
        if listener == "push":
            push = listen_for_events(
                self.client,
                self.identifier,
                self.supervisor,
                served_before=self.last_resync_start,
                fallback=self._poll,
            )
            group.create_task(push, name="push")
        elif listener == "poll":
            group.create_task(self._poll(), name="poll")
        elif listener == "webhook":
            group.create_task(
                serve_webhook(
                    self.supervisor, self.settings.webhook_host, self.settings.webhook_port
                ),
                name="webhook",
            )

    async def _poll(self) -> None:
        await poll_requests(
            self.client,
            self.identifier,
            self.supervisor,
            self.settings.poll_interval,
            self.process_started,
        )

    async def once(self) -> RunRecord:
        """Set up, run exactly one resync (holding the lease), and return its record."""
        expires = await self._acquire_lease()
        try:
            await self.setup()
            async with asyncio.TaskGroup() as group:
                keeper = group.create_task(self._keep_lease(expires), name="lease")
                supervisor = group.create_task(self.supervisor.run(), name="supervisor")
                self.supervisor.request(Trigger("cli"))
                await self.supervisor.started.wait()
                await self.supervisor.wait_idle()
                supervisor.cancel()
                keeper.cancel()
        finally:
            await asyncio.shield(self._stand_down())
        return self.supervisor.finished[-1]

    async def aclose(self) -> None:
        await self.client.aclose()
