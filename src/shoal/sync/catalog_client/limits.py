"""Tunables of the catalog client: batch sizes, concurrency, retries, timeouts."""

from __future__ import annotations

from dataclasses import dataclass

from shoal.errors import ConfigError

__all__ = ["MIB", "PORT_LIMITS", "SHOAL_LIMITS", "ClientLimits"]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """How hard a :class:`CatalogClient` may push a catalog.

    The defaults are Port's documented limits (20 entities and 1 MiB per bulk upsert), so a client
    built without arguments is safe against Port. Shoal catalogs accept larger batches; use
    :data:`SHOAL_LIMITS` (or ``dataclasses.replace``) when the catalog is known to be Shoal. Either
    way a 413 answer makes the client split the batch, so a too-optimistic limit costs requests,
    never entities.
    """

    max_batch_entities: int = 20
    """At most this many entities per bulk upsert request."""
    max_batch_bytes: int = MIB
    """At most this many bytes per bulk upsert body (a lone bigger entity is still sent alone)."""
    max_concurrency: int = 8
    """At most this many requests in flight at once (retries and backoff sleeps hold no slot)."""
    max_attempts: int = 10
    """Attempts per request, the first one included, before giving up."""
    backoff_base: float = 0.3
    """Backoff ceiling of the first retry in seconds; it doubles with every further attempt."""
    backoff_cap: float = 30.0
    """Upper bound of the backoff ceiling in seconds (full jitter picks in ``[0, ceiling]``)."""
    max_retry_after: float = 300.0
    """Cap in seconds on a delay the server asks for (``Retry-After``, ``x-ratelimit-reset``)."""
    timeout: float = 60.0
    """Connect/read/write/pool timeout of one request in seconds (Ocean's value)."""
    event_read_timeout: float = 60.0
    """Longest silence tolerated on the server-sent-events stream before it counts as dead."""
    token_refresh_margin: float = 60.0
    """Refresh the access token this many seconds before it expires (at most 10 % of its life)."""
    delete_batch_size: int = 100
    """At most this many identifiers per bulk delete request (Port's limit)."""

    def __post_init__(self) -> None:
        positive_ints = {
            "max_batch_entities": self.max_batch_entities,
            "max_batch_bytes": self.max_batch_bytes,
            "max_concurrency": self.max_concurrency,
            "max_attempts": self.max_attempts,
            "delete_batch_size": self.delete_batch_size,
        }
        for name, value in positive_ints.items():
            if value < 1:
                message = f"ClientLimits.{name} must be at least 1, got {value}"
                raise ConfigError(message)
        positive_floats = {
            "backoff_base": self.backoff_base,
            "backoff_cap": self.backoff_cap,
            "timeout": self.timeout,
            "event_read_timeout": self.event_read_timeout,
        }
        for name, number in positive_floats.items():
            if not number > 0:
                message = f"ClientLimits.{name} must be positive, got {number}"
                raise ConfigError(message)
        if self.max_retry_after < 0 or self.token_refresh_margin < 0:
            message = "ClientLimits.max_retry_after and token_refresh_margin must not be negative"
            raise ConfigError(message)


PORT_LIMITS = ClientLimits()
"""Port's documented limits; the default."""

SHOAL_LIMITS = ClientLimits(
    max_batch_entities=1000, max_batch_bytes=4 * MIB, delete_batch_size=1000
)
"""Larger batches for Shoal catalogs (they accept 1000 entities / 16 MiB per bulk request by
default); the runner's ``batch_size`` (``SHOAL_BATCH_SIZE``) replaces the entity count."""
