"""Run records for Port Ocean integrations, synthesised from what Ocean reports (pure, no IO).

Ocean does not report runs the way Shoal's own integrations do (``PUT /runs/{id}``). It reports
its resync state (``PATCH /resync-state``: ``running`` starts a run; ``completed``, ``failed`` or
``aborted`` ends it) and per-kind metrics on the ingest URLs, keyed by its resync ``eventId``::

    {"kindIdentifier": "service-1", "kind": "service", "kindIndex": 1, "eventId": "…",
     "syncState": "pending|syncing|completed|failed|aborted",
     "metrics": {"phase": {
         "extract": {"object_count_type": {"raw_extracted": {"object_count": 2.0}}},
         "transform": {"object_count_type": {"transformed": …, "filtered_out": …, "failed": …}},
         "load": {"object_count_type": {"loaded": …, "failed": …, "skipped": …}}}}}

plus the pseudo-kinds ``__runtime__`` (the whole resync) and ``__reconciliation__`` (the delete
phase, with ``phase.delete…deleted``). These functions turn both into the run record shape of
:class:`shoal.sync.run_record.RunRecord`, so the catalog's history shows Ocean runs like its own.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from typing import Any

from shoal.catalog.integrations import ResyncRequest
from shoal.clock import from_iso, to_datetime, to_iso
from shoal.errors import InvalidInputError
from shoal.types import JSONObject

__all__ = [
    "OCEAN_RUN_PREFIX",
    "apply_kind_metrics",
    "awaiting_end",
    "end_run",
    "is_ocean_run",
    "is_stale_failed",
    "kind_progress",
    "mark_superseded",
    "new_ocean_run_id",
    "on_schedule",
    "replace_run",
    "run_trigger",
    "settle_run",
    "start_run",
]

OCEAN_RUN_PREFIX = "ocean_"
"""Synthesised runs have ids ``ocean_20261127T031500_9f2c1a`` (Shoal's own: ``run_…``)."""

RUNTIME_KIND = "__runtime__"
RECONCILIATION_KIND = "__reconciliation__"

_KIND_STATUS = {
    "pending": "pending",
    "syncing": "running",
    "completed": "completed",
    "failed": "failed",
    "aborted": "aborted",
}
AWAITING_END = "awaitingOceanEnd"
LATE_END_WINDOW_US = 10_000_000
"""Ocean reports a cancelled resync's end within moments (at its next await), never later."""
_ENDED = frozenset({"completed", "failed", "aborted"})
_COUNT_KEYS = ("fetched", "mapped", "filteredOut", "upserted", "unchanged", "failed", "deleted")
KIND_FAILED_MESSAGE = "Ocean reported this kind as failed; the integration's log has the cause"


_SAME_OCCURRENCE_US = 1_000_000
"""``nextResync`` values this close (µs) name the same occurrence of Ocean's schedule."""
_TICK_DELAY_US = 300_000_000
"""How long after an occurrence of its schedule Ocean's tick may start (its timer starts after
the anchor it reports from, and drifts), at most half an interval."""


def new_ocean_run_id(now: int) -> str:
    return f"{OCEAN_RUN_PREFIX}{to_datetime(now).strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(3)}"


def is_ocean_run(run_id: str) -> bool:
    return run_id.startswith(OCEAN_RUN_PREFIX)


def run_trigger(
    pending: ResyncRequest | None,
    actor: str | None,
    *,
    previous: Mapping[str, Any],
    state: Mapping[str, Any],
) -> tuple[str, str | None]:
    """Why Ocean started a run: ``(trigger, request id)`` from the request pending at its start,
    the resync state stored before (``previous``) and the ``running`` report (``state``).

    A request the integration recorded itself (Ocean PATCHes its record at startup) or no
    request at all means Ocean resynced on its own: ``schedule`` for a tick of its schedule
    (:func:`on_schedule`), else ``start`` (on start or ONCE, or a trigger the catalog did not
    see: a WEBHOOK or KAFKA listener's).
    """
    if pending is not None and (actor is None or pending.actor != actor):
        return pending.source, pending.id
    return ("schedule" if on_schedule(previous, state) else "start"), None


def on_schedule(previous: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
    """Whether the run that ``state`` (a ``running`` report) starts is a tick of Ocean's
    schedule (``OCEAN__SCHEDULED_RESYNC_INTERVAL``); ``previous``: the resync state stored
    before it.

    Ocean reports ``nextResync`` as the next multiple of ``intervalInMinuets`` after an anchor
    taken when its process started. A tick names an occurrence whole intervals after the one
    named before it: one, or more if reports were missed; none if the run before ended between
    the occurrence and the tick, and then the tick starts just after the occurrence before the
    one it names. A new process's first run names one from a new anchor, which matches only if
    the process started within a second of an old tick. Not told apart: a new process's first
    tick when it did not resync on start (its anchor is new, as a first run's is).
    """
    interval = state.get("intervalInMinuets", previous.get("intervalInMinuets"))
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        return False
    step = interval * 60_000_000
    if not 0 < step < math.inf:
        return False
    try:
        expected = from_iso(previous["nextResync"])
        named = from_iso(state["nextResync"])
    except (KeyError, InvalidInputError):
        return False
    intervals = round((named - expected) / step)
    if intervals < 0 or abs(named - expected - intervals * step) >= _SAME_OCCURRENCE_US:
        return False
    if intervals:
        return True
    try:
        started = from_iso(state["lastResyncStart"]) - (named - step)
    except (KeyError, InvalidInputError):
        return False
    return 0 <= started < min(step / 2, _TICK_DELAY_US)


def _timestamp(value: object, default: int) -> str:
    """Ocean's own ISO timestamp when it sent a valid one, else the catalog's clock."""
    if isinstance(value, str):
        try:
            return to_iso(from_iso(value)) or ""
        except InvalidInputError:
            pass
    return to_iso(default) or ""


def _totals(kinds: list[JSONObject], delete_phase: Mapping[str, Any] | None = None) -> JSONObject:
    totals = {key: sum(int(kind.get(key) or 0) for kind in kinds) for key in _COUNT_KEYS}
    if delete_phase:  # Ocean reports deletes for the whole run, not per kind
        totals["deleted"] = max(totals["deleted"], int(delete_phase.get("deleted") or 0))
    return totals


def start_run(
    run_id: str,
    integration: str,
    state: Mapping[str, Any],
    *,
    now: int,
    trigger: str,
    trigger_request: str | None,
) -> JSONObject:
    """The record of the run a ``{"status": "running", …}`` resync-state PATCH starts."""
    return {
        "id": run_id,
        "integration": integration,
        "trigger": trigger,
        "triggerRequest": trigger_request,
        "status": "running",
        "startedAt": _timestamp(state.get("lastResyncStart"), now),
        "endedAt": None,
        "durationSeconds": None,
        "kinds": [],
        "totals": _totals([]),
        # Ocean reports how many it deleted, not how many it owned or found stale: unknown
        "deletePhase": {
            "status": "pending",
            "reason": None,
            "owned": None,
            "stale": None,
            "deleted": 0,
        },
        "abortedBy": None,
        "error": None,
        "warnings": [],
        "reporter": "ocean",
        "oceanEventId": None,
    }


def end_run(
    run: Mapping[str, Any],
    status: str,
    state: Mapping[str, Any],
    *,
    now: int,
    aborted_by: str | None = None,
) -> JSONObject:
    """The record once Ocean reports the run's end (``completed``, ``failed`` or ``aborted``)."""
    if status not in _ENDED:
        message = f"a run ends completed, failed or aborted, not {status!r}"
        raise InvalidInputError(message)
    ended_at = _timestamp(state.get("lastResyncEnd"), now)
    ended = dict(run)
    ended["status"] = status
    ended["endedAt"] = ended_at
    ended["durationSeconds"] = max(0.0, (from_iso(ended_at) - from_iso(run["startedAt"])) / 1e6)
    if aborted_by is not None:
        ended["abortedBy"] = aborted_by
    kinds = [dict(kind) for kind in run.get("kinds", [])]
    if status == "aborted":
        for kind in kinds:
            if kind.get("status") in ("pending", "running"):
                kind["status"] = "aborted"
    ended["kinds"] = kinds
    phase = dict(run.get("deletePhase") or {})
    if phase.get("status") in (None, "pending", "running"):
        phase["status"] = "skipped"
        phase["reason"] = _skip_reason(status, kinds, aborted_by)
    ended["deletePhase"] = phase
    if status == "failed" and not ended.get("error"):
        failed = [str(kind.get("kind")) for kind in kinds if kind.get("status") == "failed"]
        ended["error"] = (
            f"Ocean reported the resync as failed (failed kinds: {', '.join(failed)})"
            if failed
            else "Ocean reported the resync as failed"
        )
    return ended


def replace_run(run: Mapping[str, Any], new_run_id: str, *, now: int) -> JSONObject:
    """A run still running when Ocean starts another: aborted by it, its own end report due.

    Concurrent resyncs (WEBHOOK and KAFKA listeners, a scheduled resync) report the older run's
    end only after the newer run's start; :func:`settle_run` files that report under this run
    when it says ``aborted`` (the newer resync aborts the older). A process killed mid-resync
    never reports; the ``completed`` of the process that replaced it is the newer run's.
    """
    ended = end_run(run, "aborted", {}, now=now, aborted_by=new_run_id)
    ended[AWAITING_END] = to_iso(now)
    return ended


def awaiting_end(run: Mapping[str, Any], *, now: int) -> bool:
    """Whether an end report Ocean sends now is the late one of this replaced run."""
    marked = run.get(AWAITING_END)
    if not isinstance(marked, str):
        return False
    try:
        return now - from_iso(marked) <= LATE_END_WINDOW_US
    except InvalidInputError:
        return False


def settle_run(
    run: Mapping[str, Any], status: str, state: Mapping[str, Any], *, now: int
) -> JSONObject:
    """File Ocean's end report under a run the catalog had already ended.

    Either a replaced run (its late report) or one the stale-run sweeper failed because its
    heartbeats stopped: Ocean was alive after all, and what it reports is the truth.
    """
    settled = {key: value for key, value in run.items() if key != AWAITING_END}
    if status == "aborted" and run.get(AWAITING_END):
        return settled
    if settled.pop("failureReason", None):
        note = (
            "the catalog marked this run failed when its heartbeats stopped; "
            f"Ocean then reported it {status}"
        )
        settled["warnings"] = [*settled.get("warnings", []), note]
        settled["error"] = None
    if status != "aborted":
        settled["abortedBy"] = None
    return end_run(settled, status, state, now=now)


def is_stale_failed(run: Mapping[str, Any]) -> bool:
    """A run the stale-run sweeper failed (``failureReason``), not one Ocean reported failed."""
    return run.get("status") == "failed" and bool(run.get("failureReason"))


def _skip_reason(status: str, kinds: list[JSONObject], aborted_by: str | None) -> str:
    if status == "aborted":
        return f"the run was aborted by {aborted_by}" if aborted_by else "the run was aborted"
    failed = [str(kind.get("kind")) for kind in kinds if kind.get("status") == "failed"]
    if failed:
        return f"kinds failed: {', '.join(failed)}"
    if status == "failed":
        return "the resync failed"
    return "Ocean reported no delete phase"


def mark_superseded(
    previous: Mapping[str, Any], request_created_at: int, new_run_id: str
) -> JSONObject | None:
    """The previous run naming ``new_run_id`` in ``abortedBy``, if that run replaced it.

    Ocean (0.56, POLLING) cancels a running resync when a newer request arrives, reports it
    ``aborted``, then starts the next one: a request recorded while the aborted run ran links them.
    """
    if previous.get("status") != "aborted" or previous.get("abortedBy"):
        return None
    try:
        started = from_iso(str(previous.get("startedAt")))
        ended = from_iso(str(previous.get("endedAt")))
    except InvalidInputError:
        return None
    if not started <= request_created_at <= ended:
        return None
    updated = {**previous, "abortedBy": new_run_id}
    phase = previous.get("deletePhase")
    if isinstance(phase, Mapping) and phase.get("status") == "skipped":
        updated["deletePhase"] = {**phase, "reason": f"the run was aborted by {new_run_id}"}
    return updated


def _count(phase: Mapping[str, Any], *path: str) -> int:
    node: Any = phase
    for key in (*path, "object_count"):
        if not isinstance(node, Mapping):
            return 0
        node = node.get(key)
    if not isinstance(node, int | float) or isinstance(node, bool) or not math.isfinite(node):
        return 0
    return max(0, min(int(node), _MAX_COUNT))


_MAX_COUNT = 2**53
"""Counts beyond this are not counts (JSON's exact integers end there; a 64-bit column after)."""


def _phases(event: Mapping[str, Any]) -> Mapping[str, Any]:
    metrics = event.get("metrics")
    phase = metrics.get("phase") if isinstance(metrics, Mapping) else None
    return phase if isinstance(phase, Mapping) else {}


def kind_progress(event: Mapping[str, Any]) -> JSONObject:
    """One kind's progress (Shoal's ``KindProgress`` JSON) from an Ocean kind metrics event."""
    phase = _phases(event)
    status = _KIND_STATUS.get(str(event.get("syncState")), "running")
    failed = (
        _count(phase, "extract", "object_count_type", "failed")
        + _count(phase, "transform", "object_count_type", "failed")
        + _count(phase, "load", "object_count_type", "failed")
    )
    index = event.get("kindIndex")
    return {
        "kind": str(event.get("kind") or event.get("kindIdentifier") or "?"),
        "index": index if isinstance(index, int) and not isinstance(index, bool) else 0,
        "status": status,
        "fetched": _count(phase, "extract", "object_count_type", "raw_extracted"),
        "mapped": _count(phase, "transform", "object_count_type", "transformed"),
        "filteredOut": _count(phase, "transform", "object_count_type", "filtered_out"),
        "upserted": _count(phase, "load", "object_count_type", "loaded"),
        "unchanged": _count(phase, "load", "object_count_type", "skipped"),
        "failed": failed,
        "deleted": 0,
        "errors": (
            [{"message": KIND_FAILED_MESSAGE, "count": 1, "examples": []}]
            if status == "failed"
            else []
        ),
    }


def _delete_phase(run: Mapping[str, Any], event: Mapping[str, Any]) -> JSONObject:
    state = str(event.get("syncState"))
    phase = dict(run.get("deletePhase") or {})
    if state == "syncing":
        phase["status"] = "running"
    elif state == "completed":
        phase["status"] = "done"
        phase["deleted"] = _count(_phases(event), "delete", "object_count_type", "deleted")
    elif state in ("failed", "aborted"):
        phase["status"] = "skipped"
        failed = [str(k.get("kind")) for k in run.get("kinds", []) if k.get("status") == "failed"]
        phase["reason"] = (
            f"kinds failed: {', '.join(failed)}"
            if failed
            else f"Ocean reported its reconciliation as {state}"
        )
    return phase


def apply_kind_metrics(run: Mapping[str, Any], event: Mapping[str, Any]) -> JSONObject:
    """The run with one Ocean metrics event folded in (kinds replace earlier reports by index).

    A finished run keeps its status: Ocean reports the final kind metrics around the state PATCH.
    """
    updated = dict(run)
    kind_key = str(event.get("kindIdentifier") or "")
    if isinstance(event.get("eventId"), str):
        updated["oceanEventId"] = event["eventId"]
    for key in ("oceanVersion", "integrationVersion"):
        if isinstance(event.get(key), str):
            updated[key] = event[key]
    if kind_key == RUNTIME_KIND:
        return updated
    if kind_key == RECONCILIATION_KIND:
        updated["deletePhase"] = _delete_phase(run, event)
        updated["totals"] = _totals(updated.get("kinds", []), updated["deletePhase"])
        return updated
    progress = kind_progress(event)
    kinds = [kind for kind in run.get("kinds", []) if kind.get("index") != progress["index"]]
    kinds.append(progress)
    kinds.sort(key=lambda kind: int(kind.get("index") or 0))
    updated["kinds"] = kinds
    updated["totals"] = _totals(kinds, updated.get("deletePhase"))
    return updated
