"""The transport layer of the catalog client: authentication, retries, bounded concurrency.

:class:`CatalogSession` sends one logical request and returns the final response; deciding what
a status means for a given endpoint is the client's business, not this module's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import orjson

from shoal.errors import CatalogUnavailableError, UnauthorizedError
from shoal.sync.catalog_client.limits import ClientLimits
from shoal.sync.catalog_client.responses import describe, ok_body, refusal
from shoal.sync.catalog_client.retry import RetryPolicy, backoff_delay, retry_hint
from shoal.types import JSON

__all__ = ["CatalogSession", "Params", "Sleep"]

logger = logging.getLogger("shoal.sync.catalog_client")

Sleep = Callable[[float], Awaitable[None]]
"""The coroutine used to wait between attempts (``asyncio.sleep``; tests inject a recorder)."""

Params = Sequence[tuple[str, str]]
"""Query parameters in order; a key may repeat (``include=a&include=b``)."""

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_UNKNOWN_TOKEN_LIFETIME = 300.0
_NO_SLOT = contextlib.nullcontext()


@dataclass(frozen=True, slots=True)
class _Token:
    authorization: str
    refresh_at: float


class CatalogSession:
    """An authenticated, retrying, concurrency-bounded HTTP session with one catalog."""

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Mapping[str, str],
        user_agent: str,
        exporter_user_agent: str,
        limits: ClientLimits,
        transport: httpx.AsyncBaseTransport | None,
        sleep: Sleep,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self._limits = limits
        self._credentials = orjson.dumps(dict(credentials))
        self._user_agent = user_agent
        self._exporter_user_agent = exporter_user_agent
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._semaphore = asyncio.Semaphore(limits.max_concurrency)
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        # Room for every permitted request plus the long-lived event stream, so waiting for a
        # pooled connection never eats into a request's timeout.
        pool = limits.max_concurrency + 4
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/v1",
            transport=transport,
            timeout=httpx.Timeout(limits.timeout),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            follow_redirects=False,
        )

    @property
    def api_url(self) -> str:
        """The API root, ``{base_url}/v1``."""
        return str(self._http.base_url).rstrip("/")

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Params | None = None,
        body: JSON = None,
        content: bytes | None = None,
        exporter: bool = False,
        policy: RetryPolicy | None = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        """Send one logical request with auth and retries; return the final response.

        ``path`` is relative to ``/v1`` and already percent-encoded. ``body`` is serialised
        with orjson; ``content`` is sent as is (pre-serialised JSON). ``exporter`` selects the
        ``.../exporter`` User-Agent that the catalog stamps on entities as their datasource.
        ``policy`` defaults to IDEMPOTENT for GET/PUT/DELETE and exporter (entity endpoint)
        requests, UNSAFE otherwise. ``what`` names the operation in errors and logs.

        Entity requests (``exporter``) share ``limits.max_concurrency`` slots; the others (run
        lease, run reports, resync state: a few per second at most) never wait for one, so a
        long queue of writes, such as a delete phase's, cannot hold up the lease renewal or the
        heartbeat until the lease expires.

        The response may have any status the policy does not retry; callers interpret it. A 401
        refreshes the token and retries once. Raises :class:`CatalogUnavailableError` when
        attempts run out.
        """
        if policy is None:
            idempotent = method in _IDEMPOTENT_METHODS or exporter
            policy = RetryPolicy.IDEMPOTENT if idempotent else RetryPolicy.UNSAFE
        if body is not None:
            content = orjson.dumps(body)
        headers = {
            "User-Agent": self._exporter_user_agent if exporter else self._user_agent,
            "Accept": "application/json",
        }
        if content is not None:
            headers["Content-Type"] = "application/json"
        query = tuple(params) if params is not None else None
        attempt = 1
        refreshed = False
        while True:
            token = await self._current_token() if authenticated else None
            if token is not None:
                headers["Authorization"] = token.authorization
            request = self._http.build_request(
                method, path, params=query, content=content, headers=headers
            )
            try:
                # The slot is held for the exchange only, never across a backoff sleep.
                async with self._semaphore if exporter else _NO_SLOT:
                    response = await self._http.send(request)
            except httpx.RequestError as exc:
                if not policy.retries_error(exc) or attempt >= self._limits.max_attempts:
                    message = (
                        f"{what}: could not reach the catalog ({method} {request.url}) "
                        f"after {attempt} attempt(s): {exc!r}"
                    )
                    raise CatalogUnavailableError(message) from exc
                delay = self._backoff(attempt)
                logger.warning("%s: %r on attempt %d, retrying in %.2fs", what, exc, attempt, delay)
            else:
                status = response.status_code
                if status == 401 and token is not None and not refreshed:
                    # The token was revoked or expired early: refresh it once. This does not
                    # count as an attempt; a second 401 is final.
                    refreshed = True
                    self._invalidate(token)
                    continue
                if not policy.retries_status(status):
                    return response
                if attempt >= self._limits.max_attempts:
                    message = (
                        f"{what}: catalog kept failing ({method} {request.url}); last answer "
                        f"{describe(response)}, after {attempt} attempt(s)"
                    )
                    raise CatalogUnavailableError(message)
                hint = retry_hint(
                    response.headers,
                    status,
                    now=datetime.now(UTC),
                    cap=self._limits.max_retry_after,
                )
                delay = self._backoff(attempt) if hint is None else hint
                logger.warning(
                    "%s: HTTP %d on attempt %d, retrying in %.2fs", what, status, attempt, delay
                )
            await self._sleep(delay)
            attempt += 1

    async def open_stream(
        self, path: str, *, what: str, headers: Mapping[str, str], read_timeout: float
    ) -> httpx.Response:
        """GET ``path`` as a stream and return the open 2xx response (caller closes it).

        Not retried (reconnecting is the caller's policy) and holds no concurrency slot, since
        the stream lives for hours. A 401 refreshes the token once; other statuses raise
        :func:`~shoal.sync.catalog_client.responses.refusal`, connection failures
        :class:`CatalogUnavailableError`.
        """
        all_headers = {"User-Agent": self._user_agent, **headers}
        timeout = httpx.Timeout(self._limits.timeout, read=read_timeout)
        refreshed = False
        while True:
            token = await self._current_token()
            all_headers["Authorization"] = token.authorization
            request = self._http.build_request("GET", path, headers=all_headers, timeout=timeout)
            try:
                response = await self._http.send(request, stream=True)
            except httpx.RequestError as exc:
                message = f"{what}: could not reach the catalog: {exc!r}"
                raise CatalogUnavailableError(message) from exc
            if response.is_success:
                return response
            try:
                await response.aread()
            except httpx.RequestError as exc:
                message = f"{what}: connection broke while reading an error: {exc!r}"
                raise CatalogUnavailableError(message) from exc
            finally:
                await response.aclose()
            if response.status_code == 401 and not refreshed:
                refreshed = True
                self._invalidate(token)
                continue
            raise refusal(response, what)

    def _backoff(self, attempt: int) -> float:
        limits = self._limits
        return backoff_delay(
            attempt, base=limits.backoff_base, cap=limits.backoff_cap, rng=self._rng
        )

    async def _current_token(self) -> _Token:
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token
        # One fetch serves all concurrent callers: the others wait here and reuse its token.
        async with self._token_lock:
            token = self._token
            if token is None or self._clock() >= token.refresh_at:
                token = await self._fetch_token()
                self._token = token
            return token

    def _invalidate(self, stale: _Token) -> None:
        # Drop only the token that was refused: if a concurrent request already replaced it,
        # the replacement is fresh and must not be fetched again.
        if self._token is stale:
            self._token = None

    async def _fetch_token(self) -> _Token:
        what = "authenticate"
        requested_at = self._clock()
        response = await self.request(
            "POST",
            "/auth/access_token",
            what=what,
            content=self._credentials,
            policy=RetryPolicy.IDEMPOTENT,  # getting a token has no side effect
            authenticated=False,
        )
        if response.status_code in (401, 403):
            message = f"catalog rejected the client credentials: {describe(response)}"
            raise UnauthorizedError(message)
        body = ok_body(response, what)
        access_token = body.get("accessToken", body.get("access_token"))
        if not isinstance(access_token, str) or not access_token:
            message = f"{what}: catalog response has no accessToken"
            raise CatalogUnavailableError(message)
        token_type = body.get("tokenType", body.get("token_type")) or "Bearer"
        expires_in = body.get("expiresIn", body.get("expires_in"))
        lifetime = (
            float(expires_in)
            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
            else _UNKNOWN_TOKEN_LIFETIME  # assume a short life rather than use a stale token
        )
        margin = min(self._limits.token_refresh_margin, lifetime / 10)
        return _Token(f"{token_type} {access_token}", requested_at + lifetime - margin)
