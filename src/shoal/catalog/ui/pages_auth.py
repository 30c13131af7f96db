"""Sign in, sign out, the root redirect and the static files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from shoal.catalog.api.deps import SESSION_COOKIE, ServicesDep
from shoal.catalog.auth import Role, issue_token
from shoal.catalog.ui.render import PageRoute, redirect, render, static_file
from shoal.catalog.ui.session import (
    SubmittedForm,
    clear_session,
    csrf_token,
    keep_login_nonce,
    login_nonce,
    set_session,
    submitted_form,
    submitted_login_form,
)
from shoal.clock import now_us
from shoal.errors import UnauthorizedError

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

HOME = "/ui/data-sources"


def _safe_next(target: object) -> str:
    """Only same-site UI paths: ``//evil.example`` and absolute URLs go home instead."""
    if isinstance(target, str) and target.startswith("/ui/") and not target.startswith("//"):
        return target if "\\" not in target else HOME
    return HOME


@router.get("/")
async def root() -> Response:
    return redirect(HOME)


@router.get("/ui")
async def ui_root() -> Response:
    return redirect(HOME)


@router.get("/ui/static/{name}")
async def static(name: str) -> Response:
    return static_file(name)


def _login_page(
    request: Request, services: ServicesDep, *, error: str | None, client_id: str, status: int
) -> Response:
    nonce = login_nonce(request)
    response = render(
        request,
        "login.html",
        None,
        status=status,
        csrf=csrf_token(services.signing_key, nonce),
        error=error,
        client_id=client_id,
        next=_safe_next(request.query_params.get("next")),
    )
    keep_login_nonce(request, response, nonce)
    return response


@router.get("/ui/login")
async def login_form(request: Request, services: ServicesDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            await services.caller(token)
        except UnauthorizedError:
            pass
        else:
            return redirect(_safe_next(request.query_params.get("next")))
    return _login_page(request, services, error=None, client_id="", status=200)


@router.post("/ui/login")
async def login(
    request: Request,
    services: ServicesDep,
    form: Annotated[FormData, Depends(submitted_login_form)],
) -> Response:
    client_id = form.get("clientId")
    try:
        principal = await services.store.credentials.authenticate(
            client_id, form.get("clientSecret")
        )
    except UnauthorizedError as exc:
        shown = client_id if isinstance(client_id, str) else ""
        return _login_page(request, services, error=exc.message, client_id=shown, status=401)
    if principal.role is Role.INTEGRATION:
        error = "integration credentials cannot use the web UI; sign in with a user credential"
        shown = principal.client_id
        return _login_page(request, services, error=error, client_id=shown, status=403)
    token = issue_token(services.signing_key, principal, now=now_us() // 1_000_000, session=True)
    response = redirect(_safe_next(form.get("next")))
    set_session(request, response, token)
    return response


@router.post("/ui/logout")
async def logout(
    services: ServicesDep, form: Annotated[SubmittedForm, Depends(submitted_form)]
) -> Response:
    session = form.session.principal.session
    if session is not None:  # a token from the API (not a sign-in) has no session to end
        await services.store.credentials.end_session(session)
    response = redirect("/ui/login")
    clear_session(response)
    return response
