"""Templates, static files, security headers and the route class every UI page uses."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from shoal import __version__
from shoal.catalog.ocean_runs import is_ocean_run
from shoal.catalog.ui import present
from shoal.catalog.ui.session import CSRF_FIELD, LoginRequired, Session
from shoal.errors import CatalogError, NotFoundError, UnauthorizedError

__all__ = ["PageRoute", "login_redirect", "redirect", "render", "static_file", "static_url"]

_HERE = Path(__file__).parent
_STATIC_DIR = _HERE / "static"
_MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_STATIC: dict[str, tuple[Path, str]] = {
    path.name: (path, hashlib.sha256(path.read_bytes()).hexdigest()[:12])
    for path in sorted(_STATIC_DIR.iterdir())
    if path.suffix in _MEDIA_TYPES
}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def static_url(name: str) -> str:
    """``/ui/static/shoal.css?v=<content hash>``: cached until the file changes."""
    _, digest = _STATIC[name]
    return f"/ui/static/{name}?v={digest}"


def static_file(name: str) -> Response:
    entry = _STATIC.get(name)
    if entry is None:
        message = f"no static file {name!r}"
        raise NotFoundError(message)
    path, _ = entry
    return FileResponse(
        path,
        media_type=_MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def _segment(value: object) -> str:
    """A URL path segment (``/`` kept for entity identifiers on ``{identifier:path}`` routes)."""
    return quote(str(value), safe="/")


def _with_query(path: str, **params: object) -> str:
    kept = {key: value for key, value in params.items() if value not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    when=present.format_time,
    ago=present.relative_time,
    duration=present.format_duration,
    number=present.format_number,
    status_class=present.status_class,
    seg=_segment,
    value=present.display_value,
    run_kinds=present.run_kinds,
    failed_total=present.failed_total,
)
_env.tests["ocean_run"] = lambda run: is_ocean_run(str(run.get("id", "")))
_env.globals.update(
    static_url=static_url,
    with_query=_with_query,
    version=__version__,
    csrf_field=CSRF_FIELD,
    starvation_after=present.STARVATION_WARNING_AFTER,
)


def render(
    request: Request,
    template: str,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    html = _env.get_template(template).render(
        request_path=request.url.path, session=session, status=status, **context
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(_with_query("/ui/login", next=target))


class PageRoute(APIRoute):
    """GET pages answer without a session by redirecting to the login form, and render
    catalog errors (404 …) as a page. POSTs keep the API's JSON error bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                if request.method != "GET":
                    raise UnauthorizedError("sign in first") from None
                return login_redirect(request)
            except CatalogError as exc:
                if request.method != "GET":
                    raise
                return render(request, "error.html", None, status=exc.status, message=exc.message)

        return handle
