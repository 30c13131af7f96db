"""Browser sessions: the ``shoal_token`` cookie, CSRF tokens and the login-required signal.

The session cookie holds an ordinary access token (the one ``POST /v1/auth/access_token``
issues), HttpOnly and SameSite=Strict, so the API and its event stream accept it as well.
Every POST form carries a CSRF token: an HMAC of the session token under the server's signing
key (before login, of a random nonce kept in a cookie of its own). A POST without a valid one
is refused with 403 before anything else is looked at.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from shoal.catalog.api.deps import SESSION_COOKIE, get_services, read_body
from shoal.catalog.auth import TOKEN_TTL_SECONDS, Action, Principal, Role
from shoal.errors import ForbiddenError, UnauthorizedError

__all__ = [
    "CSRF_FIELD",
    "LoginRequired",
    "PageSession",
    "Session",
    "SubmittedForm",
    "clear_session",
    "csrf_token",
    "csrf_valid",
    "keep_login_nonce",
    "login_nonce",
    "set_session",
    "submitted_form",
    "submitted_login_form",
]

NONCE_COOKIE = "shoal_login_nonce"
CSRF_FIELD = "csrf_token"
_CSRF_CONTEXT = b"shoal-ui-csrf\x00"
_BAD_CSRF = "missing or invalid CSRF token: reload the page and submit the form again"


class LoginRequired(Exception):  # noqa: N818 - a signal, not an error
    """No valid session: pages redirect to the login form."""


def csrf_token(key: str, binding: str) -> str:
    """The CSRF token of a session (``binding`` is its access token, or the login nonce)."""
    return hmac.new(key.encode(), _CSRF_CONTEXT + binding.encode(), hashlib.sha256).hexdigest()


def csrf_valid(key: str, binding: str | None, submitted: object) -> bool:
    if not binding or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(csrf_token(key, binding), submitted)


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    csrf: str

    def can(self, action: Action) -> bool:
        return self.principal.can(action)


async def _principal(request: Request, token: str) -> Principal:
    principal = await get_services(request).caller(token)
    if principal.role is Role.INTEGRATION:
        message = "integration credentials cannot use the web UI; sign in with a user credential"
        raise ForbiddenError(message)
    return principal


async def page_session(request: Request) -> Session:
    """The signed-in user of a page request, or :class:`LoginRequired`."""
    key = get_services(request).signing_key
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired
    try:
        principal = await _principal(request, token)
    except UnauthorizedError:
        raise LoginRequired from None
    return Session(principal, csrf_token(key, token))


PageSession = Annotated[Session, Depends(page_session)]


@dataclass(frozen=True, slots=True)
class SubmittedForm:
    session: Session
    form: FormData

    def text(self, name: str) -> str:
        value = self.form.get(name)
        return value if isinstance(value, str) else ""


async def _posted_form(request: Request) -> FormData:
    """The POSTed form, read within the catalog's body limit (413 above it), without files and
    with a few dozen fields at most: read before the CSRF check, so anyone can send one."""
    await read_body(request)  # the form is parsed from the body read here
    return await request.form(max_files=0, max_fields=_MAX_FORM_FIELDS)


_MAX_FORM_FIELDS = 50


async def submitted_form(request: Request) -> SubmittedForm:
    """A POSTed form of a signed-in user whose CSRF token is valid (403 otherwise)."""
    key = get_services(request).signing_key
    form = await _posted_form(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not csrf_valid(key, token, form.get(CSRF_FIELD)):
        raise ForbiddenError(_BAD_CSRF)
    assert token is not None  # csrf_valid needs it
    return SubmittedForm(Session(await _principal(request, token), csrf_token(key, token)), form)


async def submitted_login_form(request: Request) -> FormData:
    """The login form, whose CSRF token is bound to the nonce cookie set with the form."""
    key = get_services(request).signing_key
    form = await _posted_form(request)
    if not csrf_valid(key, request.cookies.get(NONCE_COOKIE), form.get(CSRF_FIELD)):
        raise ForbiddenError(_BAD_CSRF)
    return form


def login_nonce(request: Request) -> str:
    """The login form's CSRF binding: the nonce cookie's value, or a new one (see below)."""
    return request.cookies.get(NONCE_COOKIE) or secrets.token_urlsafe(24)


def keep_login_nonce(request: Request, response: Response, nonce: str) -> None:
    """Set the nonce cookie the login form's CSRF token is bound to, unless already set."""
    if request.cookies.get(NONCE_COOKIE) == nonce:
        return
    response.set_cookie(
        NONCE_COOKIE,
        nonce,
        max_age=3600,
        path="/ui/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def set_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=TOKEN_TTL_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(NONCE_COOKIE, path="/ui/login")


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
