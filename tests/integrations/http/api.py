"""A small JSON API served on loopback for the http integration's tests (not collected).

:class:`FakeApi` holds the items (``users``) and serves them at ``/api/<style>/users`` with
each pagination style, behind the configured authentication; tests change the items between
resyncs, inject failures per route, and read the request log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shoal.catalog.server import free_port
from shoal.embedded import EmbeddedServer

TOKEN = "s3cret-token"
API_KEY = "k3y"
USER, PASSWORD = "robot", "pa55"


def make_users(count: int, revision: int = 0) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"User {i}", "revision": revision} for i in range(1, count + 1)]


@dataclass
class Failure:
    """Answer the next requests to ``route`` after ``after`` successful ones with ``statuses``."""

    route: str
    statuses: deque[int]
    after: int = 0
    retry_after: str | None = None


@dataclass
class FakeApi:
    users: list[dict[str, Any]] = field(default_factory=lambda: make_users(25))
    auth: str = "bearer"  # bearer | basic | apiKey | none
    page_limit: int = 10  # the most items any page holds, whatever the client asks for
    failures: list[Failure] = field(default_factory=list)
    log: list[tuple[str, str, str]] = field(default_factory=list)  # (method, route, query)
    served: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0

    def fail(
        self, route: str, *statuses: int, after: int = 0, retry_after: str | None = None
    ) -> None:
        self.failures.append(Failure(route, deque(statuses), after, retry_after))

    def requests(self, route: str) -> list[str]:
        return [query for _, logged, query in self.log if logged == route]

    # --- the app ------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        headers = request.headers
        if self.auth == "bearer":
            return headers.get("authorization") == f"Bearer {TOKEN}"
        if self.auth == "basic":
            expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            return headers.get("authorization") == f"Basic {expected}"
        if self.auth == "apiKey":
            return headers.get("x-api-key") == API_KEY
        return True

    def _injected(self, route: str) -> Response | None:
        for failure in self.failures:
            if (
                failure.route == route
                and failure.statuses
                and self.served.get(route, 0) >= failure.after
            ):
                status = failure.statuses.popleft()
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                return JSONResponse({"error": f"injected {status}"}, status, headers=headers)
        return None

    def _window(self, start: int, size: int) -> list[dict[str, Any]]:
        return self.users[max(start, 0) : max(start, 0) + size]

    def _size(self, query: Any, name: str) -> int:
        """The page size asked for, capped at :attr:`page_limit` as real APIs do."""
        return min(int(query.get(name, "5")), self.page_limit)

    async def _handle(self, request: Request) -> Response:
        route = request.path_params["style"]
        self.log.append((request.method, route, str(request.query_params)))
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self._authorized(request):
            return JSONResponse({"error": "unauthorized"}, 401)
        if (injected := self._injected(route)) is not None:
            return injected
        self.served[route] = self.served.get(route, 0) + 1
        query = request.query_params
        if route == "single":
            return JSONResponse(self.users)
        if route == "page":
            size = self._size(query, "per_page")
            page = int(query.get("page", "1"))
            return JSONResponse(
                {"data": self._window((page - 1) * size, size), "total": len(self.users)}
            )
        if route == "offset":
            items = self._window(int(query.get("offset", "0")), self._size(query, "limit"))
            return JSONResponse({"results": items})
        if route == "cursor":
            start = int(base64.b64decode(query["cursor"]).decode()) if "cursor" in query else 0
            items = self._window(start, self._size(query, "limit"))
            end = start + len(items)
            cursor = base64.b64encode(str(end).encode()).decode() if end < len(self.users) else None
            return JSONResponse({"items": items, "meta": {"next": cursor}})
        if route == "link":
            size = self._size(query, "per_page")
            page = int(query.get("page", "1"))
            headers = {}
            if page * size < len(self.users):
                headers["Link"] = f'</api/link/users?page={page + 1}&per_page={size}>; rel="next"'
            return JSONResponse(self._window((page - 1) * size, size), headers=headers)
        if route == "elsewhere":  # a Link header that points at another origin
            return JSONResponse(
                self.users[:1], headers={"Link": '<http://example.com/x>; rel="next"'}
            )
        if route == "redirect":
            return Response(status_code=302, headers={"Location": "/api/single/users"})
        if route == "html":
            return Response("<html>oops</html>", media_type="text/html")
        return JSONResponse({"error": "no such route"}, 404)

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/api/{style}/users", self._handle, methods=["GET", "POST"])]
        )


@contextlib.asynccontextmanager
async def serving(api: FakeApi) -> AsyncIterator[str]:
    """Serve ``api`` on a free loopback port; yield its base URL (``http://127.0.0.1:N/api``)."""
    port = free_port()
    config = uvicorn.Config(
        api.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the test API did not start")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}/api"
    finally:
        server.should_exit = True
        await task
