"""Log an integration's catalog requests to a JSON-lines file (benchmark instrumentation).

Standalone (only httpx), so the benchmark copies it into the Ocean integration too: both
frameworks are then observed the same way. :func:`install` wraps ``httpx.AsyncClient.send``
and appends one line per request of interest, when it ends (answered, failed or cancelled):

* ``{"k": "write", "run": <ocean_info_resync_id>, "s": start, "e": end}`` for entity writes
  (bulk/single upserts, bulk deletes, and Shoal's unchanged-by-digest confirmations, which
  stamp the entities they confirm);
* ``{"k": "state", "status": ..., "start": lastResyncStart, "end": lastResyncEnd, "s", "e"}``
  for ``PATCH /v1/integration/{id}/resync-state``, whose body carries the integration's own
  account of when a resync started and ended;
* ``{"k": "run", "status": ..., "start": startedAt, "end": endedAt, "s", "e"}`` for Shoal's run
  reports (``PUT /v1/integration/{id}/runs/{run}``), where a Shoal run it aborted is reported.

Times are ``time.time()`` seconds; the benchmark runs every process on one machine.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

__all__ = ["install"]


def install(path: str) -> None:
    """Start logging to ``path`` (appended, line-buffered) for the rest of the process."""
    log = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    original = httpx.AsyncClient.send

    async def send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        start = time.time()
        try:
            return await original(self, request, **kwargs)
        finally:
            record = _describe(request)
            if record is not None:
                record.update(s=start, e=time.time())
                log.write(json.dumps(record) + "\n")

    httpx.AsyncClient.send = send  # type: ignore[method-assign]


def _describe(request: httpx.Request) -> dict[str, Any] | None:
    path = request.url.path
    if request.method == "POST" and (
        path.endswith(
            ("/entities/bulk", "/entities", "/bulk/entities/delete", "/entities/unchanged")
        )
    ):
        return {"k": "write", "run": request.url.params.get("ocean_info_resync_id")}
    if request.method == "PUT" and "/runs/" in path:  # Shoal's run history (an aborted run
        body = _json(request)  # is reported here only: the run replacing it owns resyncState)
        return {
            "k": "run",
            "status": body.get("status"),
            "start": body.get("startedAt"),
            "end": body.get("endedAt"),
        }
    if request.method == "PATCH" and path.endswith("/resync-state"):
        body = _json(request)
        return {
            "k": "state",
            "status": body.get("status"),
            "start": body.get("lastResyncStart"),
            "end": body.get("lastResyncEnd"),
        }
    return None


def _json(request: httpx.Request) -> dict[str, Any]:
    try:
        body = json.loads(request.content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
