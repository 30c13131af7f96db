"""Run bookkeeping (pure): what one resync did, kind by kind, as reported to the catalog."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from shoal.clock import utcnow
from shoal.types import JSONObject

__all__ = [
    "DeletePhase",
    "ErrorSummary",
    "KindProgress",
    "KindStatus",
    "RunRecord",
    "RunStatus",
    "new_run_id",
]

MAX_EXAMPLES = 5
"""Examples kept per distinct error message: enough to diagnose, small enough to report often."""


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"


class KindStatus(enum.StrEnum):
    PENDING = "pending"  # not reached yet
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # stopped by an error; the delete phase is skipped
    ABORTED = "aborted"  # the run was aborted while (or before) this kind ran


def new_run_id(now: datetime | None = None) -> str:
    """Run ids sort by start time: ``run_20261127T031500_9f2c1a``."""
    moment = now or utcnow()
    return f"run_{moment.strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(3)}"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(slots=True)
class ErrorSummary:
    """One distinct error message of a kind, how often it happened and the first examples."""

    message: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def to_json(self) -> JSONObject:
        return {"message": self.message, "count": self.count, "examples": self.examples}


@dataclass(slots=True)
class KindProgress:
    kind: str
    index: int
    status: KindStatus = KindStatus.PENDING
    fetched: int = 0
    mapped: int = 0
    filtered_out: int = 0
    upserted: int = 0
    unchanged: int = 0
    failed: int = 0
    deleted: int = 0
    errors: dict[str, ErrorSummary] = field(default_factory=dict)

    def record_error(self, message: str, example: str | None = None, *, count: int = 1) -> None:
        summary = self.errors.get(message)
        if summary is None:
            summary = self.errors[message] = ErrorSummary(message)
        summary.count += count
        if example is not None and len(summary.examples) < MAX_EXAMPLES:
            summary.examples.append(example[:500])

    def to_json(self) -> JSONObject:
        return {
            "kind": self.kind,
            "index": self.index,
            "status": self.status.value,
            "fetched": self.fetched,
            "mapped": self.mapped,
            "filteredOut": self.filtered_out,
            "upserted": self.upserted,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "deleted": self.deleted,
            "errors": [summary.to_json() for summary in self.errors.values()],
        }


@dataclass(slots=True)
class DeletePhase:
    """``status``: pending, running, done, skipped (a kind failed / run aborted), blocked
    (the deletion threshold would be crossed), aborted (cut short after ``deleted`` deletions)
    or failed (a request of the phase failed). ``reason`` says why it did not run in full;
    ``deleted`` counts the deletions the catalog confirmed, whatever the phase's end."""

    status: str = "pending"
    reason: str | None = None
    owned: int = 0
    stale: int = 0
    deleted: int = 0

    def to_json(self) -> JSONObject:
        return {
            "status": self.status,
            "reason": self.reason,
            "owned": self.owned,
            "stale": self.stale,
            "deleted": self.deleted,
        }


@dataclass(slots=True)
class RunRecord:
    """Everything the catalog's run history shows about one resync."""

    id: str
    integration: str
    trigger: str
    started_at: datetime = field(default_factory=utcnow)
    status: RunStatus = RunStatus.RUNNING
    ended_at: datetime | None = None
    kinds: list[KindProgress] = field(default_factory=list)
    delete_phase: DeletePhase = field(default_factory=DeletePhase)
    aborted_by: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    trigger_request: str | None = None

    @property
    def failed_kinds(self) -> list[KindProgress]:
        return [kind for kind in self.kinds if kind.status is KindStatus.FAILED]

    @property
    def duration(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def finished(self) -> bool:
        return self.ended_at is not None

    def finish(self, status: RunStatus, *, now: datetime | None = None) -> None:
        """End the run once; a later call (say, an abort while the end is being reported)
        changes nothing, so a completed run is never recorded as aborted."""
        if self.finished:
            return
        self.status = status
        self.ended_at = now or utcnow()
        phase = self.delete_phase
        if status is RunStatus.ABORTED:
            for kind in self.kinds:
                if kind.status in (KindStatus.PENDING, KindStatus.RUNNING):
                    kind.status = KindStatus.ABORTED
            by = f"by {self.aborted_by}" if self.aborted_by else "(the process stopped)"
            if phase.status == "running" and phase.deleted:
                phase.status = "aborted"
                phase.reason = f"cut short {by} after {phase.deleted} deletion(s)"
            elif phase.status in ("pending", "running"):
                phase.status = "skipped"
                phase.reason = f"the run was aborted {by}"
        elif phase.status in ("pending", "running"):
            phase.status = "skipped" if phase.status == "pending" else "failed"
            phase.reason = self.error or "the run failed before its delete phase"

    def totals(self) -> JSONObject:
        keys = ("fetched", "mapped", "filtered_out", "upserted", "unchanged", "failed", "deleted")
        return {key: sum(getattr(kind, key) for kind in self.kinds) for key in keys}

    def to_json(self) -> JSONObject:
        totals = self.totals()
        return {
            "id": self.id,
            "integration": self.integration,
            "trigger": self.trigger,
            "triggerRequest": self.trigger_request,
            "status": self.status.value,
            "startedAt": _iso(self.started_at),
            "endedAt": _iso(self.ended_at),
            "durationSeconds": self.duration,
            "kinds": [kind.to_json() for kind in self.kinds],
            "totals": {
                "fetched": totals["fetched"],
                "mapped": totals["mapped"],
                "filteredOut": totals["filtered_out"],
                "upserted": totals["upserted"],
                "unchanged": totals["unchanged"],
                "failed": totals["failed"],
                "deleted": totals["deleted"],
            },
            "deletePhase": self.delete_phase.to_json(),
            "abortedBy": self.aborted_by,
            "error": self.error,
            "warnings": self.warnings,
        }
