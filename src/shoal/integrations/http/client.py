"""One HTTP session against the configured API: auth, pacing, retries, and nothing else.

:class:`ApiClient` sends one logical request and returns a 2xx response, or raises
:class:`~shoal.errors.SourceError`. It retries (``retry.maxRetries`` times) on 429, on 5xx and
on network errors and timeouts, waiting what the server's ``Retry-After`` asks (seconds or an
HTTP date; more than ``rateLimit.maxRetryAfter`` fails at once) or else an exponential backoff
(``retry.backoff`` doubling up to ``retry.maxBackoff``). Other 4xx fail at once. Redirects are
not followed, so credentials are never sent beyond ``baseUrl``'s origin; a request to another
origin is refused. ``rateLimit.requestsPerSecond`` spaces request starts evenly.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Final, Self

import httpx

from shoal.errors import SourceError
from shoal.integrations.http.config import ApiKeyAuth, BasicAuth, BearerAuth, HttpConfig

__all__ = ["ApiClient", "parse_retry_after"]

log = logging.getLogger("shoal.integrations.http")

_RETRIED: Final = frozenset({429, 500, 502, 503, 504})
_BODY_PREVIEW: Final = 300
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _auth_headers(config: HttpConfig) -> dict[str, str]:
    auth = config.auth
    if isinstance(auth, BearerAuth):
        return {"Authorization": f"Bearer {auth.token.get_secret_value()}"}
    if isinstance(auth, ApiKeyAuth):
        return {auth.header: auth.key.get_secret_value()}
    return {}


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def _shown(url: httpx.URL, masked: frozenset[str]) -> str:
    """``url`` as logs and errors show it: without a user or password, and with the values of
    the query parameters in ``masked`` (those the config sets, which may carry an API key)
    replaced by ``***``."""
    shown = str(url.copy_with(userinfo=b"", query=None, fragment=None))
    if not url.query:
        return shown
    query = "&".join(
        f"{name}={'***' if name in masked else value}" for name, value in url.params.multi_items()
    )
    return f"{shown}?{query}"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS context of every session, built once: loading the CA bundle takes 30-90 ms, which
    each kind's session spent on the event loop (delaying the run's other requests and aborts)."""
    return httpx.create_ssl_context()


def _retried(response: httpx.Response) -> bool:
    """429 and 5xx, and a 403 that says when to come back (GitHub's secondary rate limit)."""
    status = response.status_code
    return status in _RETRIED or (status == 403 and "Retry-After" in response.headers)


def _preview(response: httpx.Response) -> str:
    text = " ".join(response.text[:_BODY_PREVIEW].split())
    return f": {text}" if text else ""


class ApiClient:
    """An ``httpx.AsyncClient`` for one resync of one kind; use it as an async context manager."""

    def __init__(self, config: HttpConfig) -> None:
        self._config = config
        self._origin = httpx.URL(config.base_url).copy_with(
            userinfo=b"", path="/", query=None, fragment=None
        )
        basic = config.auth if isinstance(config.auth, BasicAuth) else None
        self._client = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/") + "/",
            headers={"Accept": "application/json", **config.headers, **_auth_headers(config)},
            auth=(basic.username, basic.password.get_secret_value()) if basic else None,
            timeout=config.timeout,
            verify=_tls_context() if config.verify_tls else False,
            follow_redirects=False,
        )
        self._next_start = 0.0
        self._masked = frozenset(name for kind in config.kinds.values() for name in kind.params)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    def resolve(self, url: str | httpx.URL) -> httpx.URL:
        """``url`` (relative to ``baseUrl``, or absolute) as an absolute URL on its origin.

        Raises :class:`~shoal.errors.SourceError` for a URL on another origin.
        """
        absolute = self._client.base_url.join(str(url).lstrip("/") if isinstance(url, str) else url)
        if _origin(absolute) != _origin(self._client.base_url):
            shown = _shown(absolute, self._masked)
            message = f"refusing to send credentials to {shown}: not on {self._origin}"
            raise SourceError(message)
        return absolute

    def shown(self, url: httpx.URL) -> str:
        """``url`` as logs and errors may show it: no credentials, configured parameters
        masked."""
        return _shown(url, self._masked)

    async def _pace(self) -> None:
        rate = self._config.rate_limit.requests_per_second
        if rate is None:
            return
        loop = asyncio.get_running_loop()
        wait = self._next_start - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._next_start = max(loop.time(), self._next_start) + 1 / rate

    def _backoff(self, attempt: int) -> float:
        retry = self._config.retry
        return float(min(retry.max_backoff, retry.backoff * 2**attempt))

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request, retrying as described above; return the 2xx response."""
        target = self.resolve(url).copy_merge_params(dict(params or {}))
        what = f"{method} {self.shown(target)}"
        retries = self._config.retry.max_retries
        for attempt in range(retries + 1):
            await self._pace()
            try:
                response = await self._client.request(method, target, json=json, headers=headers)
            except httpx.TransportError as exc:
                problem, delay = f"{type(exc).__name__}: {exc}".rstrip(": "), self._backoff(attempt)
            else:
                if response.is_success:
                    return response
                problem = f"HTTP {response.status_code}{_preview(response)}"
                if not _retried(response):
                    if response.is_redirect:
                        problem += f" (redirect to {response.headers.get('Location')} not followed)"
                    raise SourceError(f"{what}: {problem}")
                delay = self._retry_delay(what, response, attempt)
            if attempt == retries:
                break
            log.warning("%s: %s; retry %d/%d in %.1f s", what, problem, attempt + 1, retries, delay)
            await asyncio.sleep(delay)
        raise SourceError(f"{what}: {problem} (gave up after {retries + 1} attempts)")

    def _retry_delay(self, what: str, response: httpx.Response, attempt: int) -> float:
        asked = parse_retry_after(response.headers.get("Retry-After"))
        if asked is None:
            return self._backoff(attempt)
        limit = self._config.rate_limit.max_retry_after
        if asked > limit:
            message = (
                f"{what}: HTTP {response.status_code} with Retry-After {asked:.0f} s, "
                f"longer than rateLimit.maxRetryAfter ({limit:g} s)"
            )
            raise SourceError(message)
        return asked
