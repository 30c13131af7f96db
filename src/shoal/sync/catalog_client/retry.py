"""Retry policy of the catalog client: what is retried, how long to wait.

Pure functions and constants; the retry loop itself lives in the client.
"""

from __future__ import annotations

import email.utils
import enum
import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx

__all__ = [
    "NOT_SENT_ERRORS",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "backoff_delay",
    "parse_delay",
    "retry_hint",
]

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses worth another attempt of an idempotent request.

Ocean leaves 500 out; we retry it for idempotent requests only, because a transient server fault
(a locked SQLite file, a restarting replica) is the usual cause and repeating the request is
harmless.
"""

NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
"""Transport errors raised before any byte of the request reached the server."""

# A bare number above this is an absolute Unix time, not a delay: no server asks for a wait of 30
# years, and ``x-ratelimit-reset`` is commonly an epoch timestamp.
_EPOCH_SECONDS = 1e9
_EPOCH_MILLISECONDS = 1e12


class RetryPolicy(enum.Enum):
    """Whether repeating a request could apply its effect twice."""

    IDEMPOTENT = "idempotent"
    """GET/PUT/DELETE and the entity upsert/delete/search POSTs: retry every transient failure."""
    UNSAFE = "unsafe"
    """Other POST/PATCH: retry only what the server provably did not process (429, unsent)."""

    def retries_status(self, status: int) -> bool:
        """True if a response with ``status`` should be retried under this policy."""
        if self is RetryPolicy.IDEMPOTENT:
            return status in RETRYABLE_STATUSES
        # 429 means "rejected before processing", so even a create can safely be repeated.
        return status == 429

    def retries_error(self, error: httpx.RequestError) -> bool:
        """True if a request that failed with ``error`` should be retried under this policy."""
        if not isinstance(error, httpx.TransportError) or isinstance(
            error, httpx.UnsupportedProtocol
        ):
            return False  # a body that does not decode, a bad URL scheme: no retry will help
        return self is RetryPolicy.IDEMPOTENT or isinstance(error, NOT_SENT_ERRORS)


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in ``[0, min(cap, base * 2 ** (attempt - 1))]``.

    ``attempt`` is the number of the attempt that just failed (1 for the first). Full jitter spreads
    the retries of concurrent batches so they do not hit a recovering server in lockstep.
    """
    exponent = min(max(attempt - 1, 0), 62)  # keeps 2 ** exponent finite
    return rng.uniform(0.0, min(cap, base * 2.0**exponent))


def parse_delay(value: str, *, now: datetime) -> float | None:
    """Seconds to wait according to a ``Retry-After``/``x-ratelimit-reset`` value, or None.

    Accepts delta-seconds, an absolute Unix time in seconds or milliseconds, an HTTP-date
    (RFC 9110) or an ISO-8601 timestamp. A time in the past gives a negative number; unparseable
    values give None.
    """
    text = value.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            return None
        if number > _EPOCH_MILLISECONDS:
            return number / 1000.0 - now.timestamp()
        if number > _EPOCH_SECONDS:
            return number - now.timestamp()
        return number
    when: datetime | None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less ISO string we read as UTC too
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds()


def retry_hint(
    headers: Mapping[str, str], status: int, *, now: datetime, cap: float
) -> float | None:
    """The delay the server asked for on a retryable response, clamped to ``[0, cap]``.

    ``Retry-After`` counts on any retryable status. ``x-ratelimit-reset`` counts only on a 429:
    Port sends rate-limit headers on other responses too, where they say nothing about a 503.
    """
    raw = headers.get("retry-after")
    if raw is None and status == 429:
        raw = headers.get("x-ratelimit-reset")
    if raw is None:
        return None
    seconds = parse_delay(raw, now=now)
    if seconds is None:
        return None
    return min(max(seconds, 0.0), cap)
