"""Presentation rules of the web UI (pure: no IO): times, durations, statuses, run history."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import yaml

from shoal.clock import from_iso, now_us, to_datetime
from shoal.errors import InvalidInputError
from shoal.types import JSONObject

__all__ = [
    "STARVATION_WARNING_AFTER",
    "abort_links",
    "config_text",
    "current_run",
    "datasource_integration",
    "display_value",
    "expected_counts",
    "failed_total",
    "flatten_metrics",
    "format_duration",
    "format_number",
    "format_time",
    "relative_time",
    "run_kinds",
    "starvation_warning",
    "status_class",
]

STARVATION_WARNING_AFTER = 3
"""Aborted runs in a row from which the integration page warns that resyncs never finish."""

_STATUS_CLASSES = {
    "running": "running",
    "completed": "completed",
    "done": "completed",
    "failed": "failed",
    "aborted": "aborted",
    "skipped": "aborted",
    "blocked": "failed",
    "pending": "idle",
}
_OCEAN_AGENT = re.compile(r"^port-ocean/[^/]+/[^/]+/(?P<id>[^/]+)(/[^/]+)?$")


def status_class(status: object) -> str:
    """The CSS modifier of a status badge (``status-running`` …); unknown statuses are idle."""
    return _STATUS_CLASSES.get(str(status).lower(), "idle") if status else "idle"


def _micros(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value:
        try:
            return from_iso(value)
        except InvalidInputError:
            return None
    return None


def format_time(value: object) -> str:
    """``2026-11-26 21:05:31 UTC`` for an ISO timestamp or epoch microseconds; ``—`` if unset."""
    micros = _micros(value)
    if micros is None:
        return "—"
    return to_datetime(micros).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative_time(value: object, *, now: int | None = None) -> str:
    """``3 min ago`` / ``in 2 h`` / ``just now``; empty when unset."""
    micros = _micros(value)
    if micros is None:
        return ""
    delta = ((now if now is not None else now_us()) - micros) / 1_000_000
    if abs(delta) < 5:
        return "just now"
    span = format_duration(abs(delta), coarse=True)
    return f"{span} ago" if delta > 0 else f"in {span}"


def format_duration(seconds: object, *, coarse: bool = False) -> str:
    """``850 ms``, ``12.3 s``, ``4 min 05 s``, ``3 h 12 min``, ``2 d 4 h``; ``—`` if unset."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return "—"
    if seconds < 1 and not coarse:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.0f} s" if coarse or seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min" if coarse else f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def format_number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    return f"{value:,}"


def run_kinds(run: Mapping[str, Any]) -> list[JSONObject]:
    """A run's kinds as reported, minus anything malformed (a run is what an integration says)."""
    kinds = run.get("kinds")
    if not isinstance(kinds, list):
        return []
    cleaned: list[JSONObject] = []
    for kind in kinds:
        if isinstance(kind, Mapping):
            errors = kind.get("errors")
            if not isinstance(errors, list):
                errors = []
            cleaned.append({**kind, "errors": [e for e in errors if isinstance(e, Mapping)]})
    return cleaned


def failed_total(kinds: Iterable[Mapping[str, Any]]) -> int:
    total = 0
    for kind in kinds:
        failed = kind.get("failed")
        total += failed if isinstance(failed, int) and not isinstance(failed, bool) else 0
    return total


def current_run(runs_newest_first: Sequence[JSONObject]) -> JSONObject | None:
    """The run in progress, if the newest run is still running."""
    if runs_newest_first and runs_newest_first[0].get("status") == "running":
        return runs_newest_first[0]
    return None


def expected_counts(runs_newest_first: Iterable[JSONObject]) -> dict[str, int]:
    """Items per kind in the last completed run: the denominators of the progress bars."""
    for run in runs_newest_first:
        if run.get("status") == "completed":
            return {
                str(kind.get("kind")): int(kind.get("fetched") or 0)
                for kind in run.get("kinds", [])
                if isinstance(kind, Mapping)
            }
    return {}


def abort_links(runs: Iterable[JSONObject]) -> dict[str, list[str]]:
    """``{run id: [ids of the runs it aborted]}``, the reverse of each run's ``abortedBy``."""
    replaced: dict[str, list[str]] = {}
    for run in runs:
        by = run.get("abortedBy")
        if isinstance(by, str) and by:
            replaced.setdefault(by, []).append(str(run.get("id")))
    return replaced


def starvation_warning(summary: Mapping[str, Any] | None, *, now: int | None = None) -> str | None:
    """ "5 runs in a row aborted; no complete resync since …" when triggers starve resyncs."""
    if not summary:
        return None
    aborted = summary.get("consecutiveAborted") or 0
    if not isinstance(aborted, int) or aborted < STARVATION_WARNING_AFTER:
        return None
    last = summary.get("lastCompletedAt")
    if last:
        since = f"no complete resync since {format_time(last)} ({relative_time(last, now=now)})"
    else:
        since = "no resync has completed yet"
    return f"{aborted} runs in a row aborted; {since}"


def datasource_integration(datasource: object) -> str | None:
    """The integration identifier in an Ocean/Shoal datasource stamp, if it is one."""
    if not isinstance(datasource, str):
        return None
    match = _OCEAN_AGENT.match(datasource)
    return match["id"] if match else None


def config_text(config: object) -> str:
    """The mapping config as YAML for reading and editing (keys in their stored order)."""
    if not config:
        return ""
    text: str = yaml.safe_dump(
        config, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    return text


def display_value(value: object) -> str:
    """A property value as text: strings as they are, everything else as compact JSON."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def flatten_metrics(value: object, prefix: str = "") -> list[tuple[str, object]]:
    """Ocean's nested kind metrics as ``(dotted.key, scalar)`` rows, in their reported order."""
    if isinstance(value, Mapping):
        rows: list[tuple[str, object]] = []
        for key, item in value.items():
            rows.extend(flatten_metrics(item, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    if isinstance(value, list):
        return [(prefix, orjson.dumps(value).decode())]
    return [(prefix, value)]
