"""Integration records, resync state, resync requests and run history (pure rules, no IO).

The integration object follows Port's shape (see docs/api.md): the catalog sets
``installationType``, the ``*Attributes.ingestUrl`` values, ``resyncState`` and the timestamps;
everything else is echoed from what the integration POSTs and PATCHes.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shoal.clock import from_iso, to_iso
from shoal.errors import InvalidInputError
from shoal.types import JSONObject

__all__ = [
    "RESYNC_STATE_KEYS",
    "ResyncRequest",
    "RunStatus",
    "TriggerSource",
    "apply_resync_state",
    "new_integration",
    "new_request_id",
    "normalize_run",
    "patch_integration",
    "pending_request",
    "run_summary",
]

_SERVER_KEYS = frozenset(
    {
        "installationType",
        "resyncState",
        "logAttributes",
        "metricAttributes",
        "ingestAttributes",
        "createdAt",
        "updatedAt",
        "identifier",
        "runSummary",
        "ok",
    }
)
RESYNC_STATE_KEYS = (
    "status",
    "lastResyncStart",
    "lastResyncEnd",
    "nextResync",
    "intervalInMinuets",
)
_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class TriggerSource(enum.StrEnum):
    """Why a resync starts."""

    START = "start"
    SCHEDULE = "schedule"
    API = "api"
    UI = "ui"
    CLI = "cli"
    WEBHOOK = "webhook"
    CONFIG = "config"  # the mapping config changed (Port resyncs then too)
    CREATE = "create"  # the integration was just created


class RunStatus(enum.StrEnum):
    RUNNING = "running"  # started, heartbeating
    COMPLETED = "completed"  # every kind finished; the delete phase ran or was blocked by policy
    FAILED = "failed"  # a kind failed, or the run's process stopped heartbeating
    ABORTED = "aborted"  # superseded by a newer trigger, or the process was shut down


@dataclass(frozen=True, slots=True)
class ResyncRequest:
    id: str
    integration: str
    source: str
    actor: str | None
    created_at: int

    def to_json(self) -> JSONObject:
        return {
            "id": self.id,
            "integration": self.integration,
            "source": self.source,
            "actor": self.actor,
            "createdAt": to_iso(self.created_at),
            "updatedAt": to_iso(self.created_at),
        }


def new_request_id(now: int) -> str:
    """Request ids sort by creation time (the SSE stream resumes from ``Last-Event-ID``)."""
    return f"rr_{now:017d}{secrets.token_hex(4)}"


def check_integration_identifier(identifier: Any) -> str:
    if (
        not isinstance(identifier, str)
        or not 0 < len(identifier) <= 100
        or not set(identifier) <= _IDENTIFIER_CHARS
    ):
        message = (
            f"integration identifier {identifier!r} is invalid: use 1-100 of a-z A-Z 0-9 - _ ."
        )
        raise InvalidInputError(message)
    return identifier


def ingest_attributes(identifier: str, base_url: str) -> JSONObject:
    root = f"{base_url.rstrip('/')}/v1/ingest/{identifier}"
    return {
        "logAttributes": {"ingestId": identifier, "ingestUrl": f"{root}/logs"},
        "metricAttributes": {"ingestId": identifier, "ingestUrl": f"{root}/metrics"},
        "ingestAttributes": {"ingestUrl": f"{root}/lake"},
    }


def check_changelog_destination(value: Any) -> None:
    """``{}``, ``{"type": "KAFKA"}`` or ``{"type": "WEBHOOK", "url": "http(s)://…"}``."""
    if value is None or value == {}:
        return
    if isinstance(value, Mapping) and value.get("type") == "KAFKA":
        return
    url = value.get("url") if isinstance(value, Mapping) else None
    if (
        isinstance(value, Mapping)
        and value.get("type") == "WEBHOOK"
        and isinstance(url, str)
        and url.startswith(("http://", "https://"))
        and len(url) <= 2000
    ):
        return
    message = (
        'changelogDestination must be {}, {"type": "KAFKA"} or '
        '{"type": "WEBHOOK", "url": "http(s)://…"}'
    )
    raise InvalidInputError(message)


def new_integration(body: Any, *, now: int, base_url: str) -> JSONObject:
    """The stored record for ``POST /v1/integration``."""
    if not isinstance(body, Mapping):
        message = "the integration body must be a JSON object"
        raise InvalidInputError(message)
    check_changelog_destination(body.get("changelogDestination"))
    identifier = check_integration_identifier(body.get("installationId", body.get("identifier")))
    record: JSONObject = {key: value for key, value in body.items() if key not in _SERVER_KEYS}
    record["installationId"] = identifier
    record["identifier"] = identifier
    record.setdefault("installationAppType", None)
    record.setdefault("version", None)
    record.setdefault("changelogDestination", {})
    record.setdefault("actionsProcessingEnabled", False)
    record.setdefault("incrementalSyncEnabled", False)
    record.setdefault("arePortResourcesInitialized", False)
    config = record.get("config")
    record["config"] = dict(config) if isinstance(config, Mapping) else {}
    if record.get("createPortResourcesOrigin") == "Port":
        record["createPortResourcesOrigin"] = "Default"  # Shoal never provisions Port-side
    record["installationType"] = "OnPrem"
    record["resyncState"] = {"status": None, "updatedAt": to_iso(now)}
    record.update(ingest_attributes(identifier, base_url))
    record["createdAt"] = record["updatedAt"] = to_iso(now)
    return record


def patch_integration(record: JSONObject, body: Any, *, now: int) -> tuple[JSONObject, bool]:
    """Shallow-merge a PATCH body. Returns the new record and whether ``config`` changed."""
    if not isinstance(body, Mapping):
        message = "the integration patch must be a JSON object"
        raise InvalidInputError(message)
    if "config" in body and not isinstance(body["config"], Mapping):
        message = "config must be a JSON object"
        raise InvalidInputError(message)
    if "changelogDestination" in body:
        check_changelog_destination(body["changelogDestination"])
    updated = dict(record)
    for key, value in body.items():
        if key not in _SERVER_KEYS and key != "installationId":
            updated[key] = value
    updated["updatedAt"] = to_iso(now)
    return updated, updated.get("config") != record.get("config")


def apply_resync_state(record: JSONObject, body: Any, *, now: int) -> JSONObject:
    """``PATCH /resync-state``: missing keys keep their value; both ``updatedAt`` become now.

    Ocean < 0.44.1 uses ``integration.updatedAt == resyncState.updatedAt`` as its watermark.
    """
    if not isinstance(body, Mapping):
        message = "the resync state must be a JSON object"
        raise InvalidInputError(message)
    status = body.get("status")
    if status is not None and (not isinstance(status, str) or status not in set(RunStatus)):
        message = f"resync status {status!r} is not one of running, completed, failed, aborted"
        raise InvalidInputError(message)
    for key in ("lastResyncStart", "lastResyncEnd", "nextResync"):
        value = body.get(key)
        if value is not None:
            if not isinstance(value, str):
                message = f"{key} must be an ISO-8601 timestamp or null"
                raise InvalidInputError(message)
            from_iso(value)
    interval = body.get("intervalInMinuets")
    if interval is not None and (not isinstance(interval, int | float) or interval < 0):
        message = "intervalInMinuets must be a non-negative number or null"
        raise InvalidInputError(message)
    stamp = to_iso(now)
    state = {**record.get("resyncState", {}), **body, "updatedAt": stamp}
    return {**record, "resyncState": state, "updatedAt": stamp}


def pending_request(latest: ResyncRequest | None, record: JSONObject) -> ResyncRequest | None:
    """The request ``GET /resync-request`` reports: the latest, if no resync started since.

    Ocean 0.44-0.48 only resyncs when a request exists; 0.56 replays any request once on every
    restart. Reporting only requests newer than ``resyncState.lastResyncStart`` serves both.
    """
    if latest is None:
        return None
    last_start = record.get("resyncState", {}).get("lastResyncStart")
    if isinstance(last_start, str):
        try:
            if from_iso(last_start) >= latest.created_at:
                return None
        except InvalidInputError:
            return latest
    return latest


# --- run history ------------------------------------------------------------------------------

_RUN_TIME_KEYS = ("startedAt", "endedAt")


def normalize_run(run_id: Any, body: Any) -> JSONObject:
    """Validate a run record reported by an integration (``PUT /runs/{id}``)."""
    if not isinstance(body, Mapping):
        message = "a run record must be a JSON object"
        raise InvalidInputError(message)
    if not isinstance(run_id, str) or not 0 < len(run_id) <= 100:
        message = "a run id must be 1-100 characters"
        raise InvalidInputError(message)
    run: JSONObject = dict(body)
    run["id"] = run_id
    status = run.get("status", RunStatus.RUNNING.value)
    if not isinstance(status, str) or status not in set(RunStatus):
        message = f"run status {status!r} is not one of running, completed, failed, aborted"
        raise InvalidInputError(message)
    run["status"] = status
    trigger = run.get("trigger")
    if trigger is not None and not isinstance(trigger, str):
        message = "run trigger must be a string"
        raise InvalidInputError(message)
    for key in _RUN_TIME_KEYS:
        if run.get(key) is not None:
            if not isinstance(run[key], str):
                message = f"run {key} must be an ISO-8601 timestamp"
                raise InvalidInputError(message)
            from_iso(run[key])
    if run.get("startedAt") is None:
        message = "a run record needs startedAt"
        raise InvalidInputError(message)
    kinds = run.get("kinds", [])
    if not isinstance(kinds, list) or not all(isinstance(k, Mapping) for k in kinds):
        message = "run kinds must be a list of objects"
        raise InvalidInputError(message)
    return run


def stale_run_update(run: JSONObject, *, now: int, last_heartbeat: int) -> JSONObject:
    """The record of a running run whose integration stopped heartbeating."""
    seconds = (now - last_heartbeat) // 1_000_000
    reason = f"no heartbeat for {seconds} s: the integration process stopped or lost the catalog"
    return {
        **run,
        "status": RunStatus.FAILED.value,
        "endedAt": to_iso(now),
        "failureReason": reason,
        "deletePhase": _unfinished_phase_skipped(run.get("deletePhase"), reason),
    }


def _unfinished_phase_skipped(phase: Any, reason: str) -> Any:
    """A delete phase that had not run yet (or was cut short) is skipped, and says why."""
    if not phase:
        return {"status": "skipped", "reason": reason}
    if isinstance(phase, Mapping) and phase.get("status") in ("pending", "running"):
        return {**phase, "status": "skipped", "reason": reason}
    return phase


def run_summary(runs_newest_first: Sequence[JSONObject]) -> JSONObject:
    """Starvation at a glance: aborted runs in a row and the last complete resync."""
    consecutive_aborted = 0
    for run in runs_newest_first:
        if run.get("status") == RunStatus.RUNNING.value and consecutive_aborted == 0:
            continue
        if run.get("status") != RunStatus.ABORTED.value:
            break
        consecutive_aborted += 1
    last_completed = next(
        (r for r in runs_newest_first if r.get("status") == RunStatus.COMPLETED.value), None
    )
    return {
        "consecutiveAborted": consecutive_aborted,
        "lastCompletedAt": last_completed.get("endedAt") if last_completed else None,
        "lastCompletedRun": last_completed.get("id") if last_completed else None,
    }


def kinds_in(runs: Iterable[JSONObject]) -> list[str]:
    seen: dict[str, None] = {}
    for run in runs:
        for kind in run.get("kinds", []):
            seen.setdefault(str(kind.get("kind")), None)
    return list(seen)
