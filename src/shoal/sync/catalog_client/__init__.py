"""The catalog client: how an integration talks to a catalog (Shoal's or Port's).

:class:`CatalogClient` speaks the subset of Port's REST API that Port Ocean uses, plus Shoal's own
run-history and event-stream endpoints. It handles authentication, retries with backoff that
honours ``Retry-After``, bounded concurrency, and batching within Port's limits (or Shoal's larger
ones, see :data:`SHOAL_LIMITS`).
"""

from shoal.sync.catalog_client.client import CatalogClient
from shoal.sync.catalog_client.limits import MIB, PORT_LIMITS, SHOAL_LIMITS, ClientLimits
from shoal.sync.catalog_client.results import (
    UNKNOWN_IDENTIFIER,
    DeleteResult,
    EntityError,
    UpsertedEntity,
    UpsertResult,
)
from shoal.sync.catalog_client.session import Sleep
from shoal.sync.catalog_client.sse import EventStream, ServerSentEvent, SSEDecoder

__all__ = [
    "MIB",
    "PORT_LIMITS",
    "SHOAL_LIMITS",
    "UNKNOWN_IDENTIFIER",
    "CatalogClient",
    "ClientLimits",
    "DeleteResult",
    "EntityError",
    "EventStream",
    "SSEDecoder",
    "ServerSentEvent",
    "Sleep",
    "UpsertResult",
    "UpsertedEntity",
]
