"""The async client an integration uses to talk to a catalog, Shoal's or Port's.

Wire behaviour follows Port's API as Port Ocean uses it: the same paths, query parameters, bodies
and User-Agent strings, so a catalog cannot tell this client from Ocean. Where Ocean is loose
(unbounded concurrency, no retry of 500, swallowed errors) we are stricter and say why.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import quote

import httpx

from shoal.concurrency import all_or_first_error
from shoal.content_digest import body_digest, may_repeat
from shoal.errors import CatalogUnavailableError, ConfigError, LoadError, ShoalError
from shoal.sync.catalog_client.batching import EntityBatch, split_batches
from shoal.sync.catalog_client.limits import ClientLimits
from shoal.sync.catalog_client.responses import (
    describe,
    json_object,
    object_field,
    object_list,
    ok_body,
    refusal,
    server_message,
)
from shoal.sync.catalog_client.results import (
    UNKNOWN_IDENTIFIER,
    DeleteResult,
    EntityError,
    UpsertedEntity,
    UpsertResult,
)
from shoal.sync.catalog_client.retry import RetryPolicy
from shoal.sync.catalog_client.session import CatalogSession, Params, Sleep
from shoal.sync.catalog_client.sse import EventStream
from shoal.types import JSONObject

__all__ = ["CatalogClient"]

logger = logging.getLogger("shoal.sync.catalog_client")

_T = TypeVar("_T")
_I = TypeVar("_I")

# Statuses of a single-entity upsert that concern that entity only (unresolved search identifier
# or missing related entity, identifier clash, too big, invalid): record them and go on.
_ENTITY_LEVEL_STATUSES = frozenset({404, 409, 413, 422})

# What Shoal-only endpoints get from a Port catalog (or an older Shoal).
_UNSUPPORTED_STATUSES = frozenset({404, 405, 501})


def _segment(value: str) -> str:
    """Percent-encode one path segment, ``/`` included (catalogs decode with unquote_plus)."""
    return quote(value, safe="")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _check_ua_part(name: str, value: str) -> str:
    # The datasource is matched by prefix/suffix on "/"-separated parts: a "/" inside one part,
    # or whitespace, would make this integration's entities unfindable in the delete phase.
    if not value or "/" in value or any(char.isspace() for char in value):
        message = f"{name} must be non-empty without '/' or whitespace, got {value!r}"
        raise ConfigError(message)
    return value


def _entity_identifier(entity: JSONObject) -> str | None:
    identifier = entity.get("identifier")
    return identifier if isinstance(identifier, str) else None


def _index(item: JSONObject, size: int) -> int | None:
    index = item.get("index")
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < size:
        return index
    return None


async def _in_halves(
    what: str, chunk: list[_I], send: Callable[[list[_I]], Awaitable[_T]]
) -> tuple[_T, _T]:
    """``send`` each half of a ``chunk`` the catalog refused as too large (413), in order."""
    logger.info("%s: too many at once (413), splitting them in halves", what)
    middle = len(chunk) // 2
    return await send(chunk[:middle]), await send(chunk[middle:])


class CatalogClient:
    """Async client for a catalog's REST API (Port's or Shoal's: same wire format).

    Usage::

        async with CatalogClient("https://api.getport.io", client_id=..., client_secret=...,
                                 integration_identifier="my-github", integration_type="github",
                                 integration_version="1.2.0") as client:
            result = await client.upsert_entities("service", entities, merge=True,
                                                  create_missing_related_entities=True)

    Contracts common to every method:

    * Authentication is automatic: one access token is fetched and shared by all requests,
      refreshed shortly before it expires, and refreshed once more if the catalog answers 401.
    * Transient failures (408/429/500/502/503/504, connection errors, timeouts) are retried with
      full-jitter exponential backoff, honouring ``Retry-After`` and ``x-ratelimit-reset``, for
      idempotent requests: GET/PUT and the entity upsert/delete/search POSTs. Other POST/PATCH
      requests are retried only when the catalog cannot have processed them (429, connection
      never established). Exhausted retries raise :class:`CatalogUnavailableError`.
    * Refusals raise the matching ``CatalogError`` subclass (``NotFoundError`` for 404...), and a
      final 5xx raises ``CatalogUnavailableError``; entity writes raise :class:`LoadError`.
    * At most ``limits.max_concurrency`` requests are in flight at once, across all methods.
    * Cancellation is never swallowed: a cancelled call cancels its requests and backoff sleeps
      and re-raises ``CancelledError``; no retry loop survives it.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str,
        client_secret: str,
        integration_identifier: str,
        integration_type: str,
        integration_version: str,
        limits: ClientLimits | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        """Prepare the client; nothing is sent before the first call.

        ``base_url`` is the catalog root (``https://api.getport.io``); ``/v1`` is appended.
        ``transport`` replaces the network (tests pass ``httpx.MockTransport``). ``sleep``,
        ``clock`` (monotonic seconds, for token expiry) and ``rng`` (backoff jitter) exist for
        deterministic tests. Raises ``ConfigError`` if an identity part contains ``/``.
        """
        self._limits = limits or ClientLimits()
        self._identifier = _check_ua_part("integration_identifier", integration_identifier)
        self._type = _check_ua_part("integration_type", integration_type)
        version = _check_ua_part("integration_version", integration_version)
        self._user_agent = f"port-ocean/{self._type}/{version}/{self._identifier}"
        self._session = CatalogSession(
            base_url,
            credentials={"clientId": client_id, "clientSecret": client_secret},
            user_agent=self._user_agent,
            exporter_user_agent=f"{self._user_agent}/exporter",
            limits=self._limits,
            transport=transport,
            sleep=sleep,
            clock=clock,
            rng=rng or random.Random(),
        )

    def __repr__(self) -> str:
        return f"CatalogClient({self._session.api_url!r}, user_agent={self._user_agent!r})"

    # -- identity -----------------------------------------------------------------------------

    @property
    def limits(self) -> ClientLimits:
        """The limits this client was built with."""
        return self._limits

    @property
    def user_agent(self) -> str:
        """``port-ocean/{type}/{version}/{identifier}``: sent on integration/org/run calls."""
        return self._user_agent

    @property
    def datasource(self) -> str:
        """``port-ocean/{type}/{version}/{identifier}/exporter``: the User-Agent of entity
        writes and searches, which the catalog stamps on entities as their datasource."""
        return f"{self._user_agent}/exporter"

    @property
    def datasource_prefix(self) -> str:
        """Datasource prefix of this integration's entities, whatever version wrote them."""
        return f"port-ocean/{self._type}/"

    @property
    def datasource_suffix(self) -> str:
        """Datasource suffix of this integration's entities, whatever version wrote them."""
        return f"/{self._identifier}/exporter"

    # -- lifecycle ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the underlying HTTP connections."""
        await self._session.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- organization, integration, blueprints ------------------------------------------------

    async def get_organization(self) -> JSONObject:
        """``GET /v1/organization`` → the ``organization`` object (``featureFlags``, ``id``...)."""
        what = "get organization"
        response = await self._session.request("GET", "/organization", what=what)
        return object_field(ok_body(response, what), "organization", what)

    async def get_integration(self, identifier: str) -> JSONObject | None:
        """``GET /v1/integration/{id}`` → the integration object, or None if it does not exist."""
        what = f"get integration {identifier!r}"
        response = await self._session.request(
            "GET", f"/integration/{_segment(identifier)}", what=what
        )
        if response.status_code == 404:
            return None
        return object_field(ok_body(response, what), "integration", what)

    async def create_integration(self, body: JSONObject) -> JSONObject:
        """``POST /v1/integration`` → the created integration. 409 raises ``ConflictError``."""
        what = f"create integration {body.get('installationId')!r}"
        response = await self._session.request(
            "POST", "/integration", what=what, body=body, policy=RetryPolicy.UNSAFE
        )
        return object_field(ok_body(response, what), "integration", what)

    async def patch_integration(self, identifier: str, body: JSONObject) -> JSONObject:
        """``PATCH /v1/integration/{id}`` (shallow merge) → the updated integration.

        On a catalog, any PATCH of an integration (``{}`` included) is a resync trigger.
        """
        what = f"patch integration {identifier!r}"
        path = f"/integration/{_segment(identifier)}"
        response = await self._session.request("PATCH", path, what=what, body=body)
        return object_field(ok_body(response, what), "integration", what)

    async def patch_resync_state(self, identifier: str, state: JSONObject) -> JSONObject:
        """``PATCH /v1/integration/{id}/resync-state`` → the updated integration.

        ``state`` holds the keys to change (``status``, ``lastResyncStart``, ``lastResyncEnd``,
        ``nextResync``, ``intervalInMinuets``); absent keys keep their stored value. Retried
        as idempotent: a lost report would leave the state "running" until the next run.
        """
        what = f"patch resync state of integration {identifier!r}"
        path = f"/integration/{_segment(identifier)}/resync-state"
        # it sets absolute values: sending it again after a 5xx or a timeout changes nothing
        response = await self._session.request(
            "PATCH", path, what=what, body=state, policy=RetryPolicy.IDEMPOTENT
        )
        return object_field(ok_body(response, what), "integration", what)

    async def get_resync_request(self, identifier: str) -> JSONObject | None:
        """``GET /v1/integration/{id}/resync-request`` → ``{id, updatedAt, ...}`` or None if no
        resync is pending (the catalog answers ``{"request": null}``)."""
        what = f"get resync request of integration {identifier!r}"
        path = f"/integration/{_segment(identifier)}/resync-request"
        response = await self._session.request("GET", path, what=what)
        request = ok_body(response, what).get("request")
        return request if isinstance(request, dict) and request else None

    async def get_blueprint(self, blueprint: str) -> JSONObject | None:
        """``GET /v1/blueprints/{bp}`` → the blueprint, or None if it does not exist."""
        what = f"get blueprint {blueprint!r}"
        response = await self._session.request(
            "GET", f"/blueprints/{_segment(blueprint)}", what=what
        )
        if response.status_code == 404:
            return None
        return object_field(ok_body(response, what), "blueprint", what)

    async def get_blueprints(self, blueprints: Iterable[str]) -> dict[str, JSONObject | None]:
        """:meth:`get_blueprint` of each of ``blueprints``, concurrently."""
        wanted = list(dict.fromkeys(blueprints))
        bodies = await all_or_first_error(self.get_blueprint(bp) for bp in wanted)
        return dict(zip(wanted, bodies, strict=True))

    async def create_blueprint(self, body: JSONObject) -> JSONObject:
        """``POST /v1/blueprints`` → the created blueprint. 409 raises ``ConflictError``."""
        what = f"create blueprint {body.get('identifier')!r}"
        response = await self._session.request(
            "POST", "/blueprints", what=what, body=body, policy=RetryPolicy.UNSAFE
        )
        return object_field(ok_body(response, what), "blueprint", what)

    async def patch_blueprint(self, blueprint: str, body: JSONObject) -> JSONObject:
        """``PATCH /v1/blueprints/{bp}`` (top-level merge) → the updated blueprint."""
        what = f"patch blueprint {blueprint!r}"
        path = f"/blueprints/{_segment(blueprint)}"
        response = await self._session.request("PATCH", path, what=what, body=body)
        return object_field(ok_body(response, what), "blueprint", what)

    # -- entities -----------------------------------------------------------------------------

    async def upsert_entities(
        self,
        blueprint: str,
        entities: Sequence[JSONObject],
        *,
        merge: bool,
        create_missing_related_entities: bool,
        run_id: str | None = None,
        parts: Sequence[bytes] | None = None,
    ) -> UpsertResult:
        """Upsert ``entities`` of ``blueprint``; per-entity refusals come back in the result.

        Entities are cut into batches of at most ``limits.max_batch_entities`` entities and
        ``limits.max_batch_bytes`` bytes, sent concurrently to
        ``POST /v1/blueprints/{bp}/entities/bulk``. A 200/207 answer is read per index; an error
        whose identifier is ``"unknown"`` is an unresolved search identifier
        (:attr:`EntityError.unresolved`). A 413 halves the batch, down to single-entity
        ``POST /v1/blueprints/{bp}/entities`` requests. Entities the catalog did not report on
        count as errors, so every input index lands in exactly one of ``entities``/``errors``.

        ``run_id`` is passed as ``ocean_info_resync_id`` (with ``ocean_info_event_type=resync``)
        so the catalog can attribute writes to a run. ``parts``, if given, holds each entity
        already serialised with ``orjson.dumps`` (it is sent as is).

        Raises :class:`LoadError` (naming blueprint, status and server message) if the catalog
        refuses a whole batch with a 4xx, e.g. an unknown blueprint, and
        :class:`CatalogUnavailableError` once retries are exhausted. Either way the remaining
        batches are cancelled, but batches already stored stay stored.
        """
        if not entities:
            return UpsertResult()
        params: Params = [
            ("upsert", "true"),
            ("merge", _flag(merge)),
            ("create_missing_related_entities", _flag(create_missing_related_entities)),
            ("validation_only", "false"),
            *self._run_params(run_id),
        ]
        batches = split_batches(
            entities,
            max_entities=self._limits.max_batch_entities,
            max_bytes=self._limits.max_batch_bytes,
            serialised=parts,
        )
        results = await all_or_first_error(
            self._upsert_bulk(blueprint, batch, params) for batch in batches
        )
        return UpsertResult.combine(results)

    async def confirm_unchanged(
        self,
        blueprint: str,
        entities: Sequence[JSONObject],
        *,
        merge: bool,
        create_missing_related_entities: bool,
        run_id: str | None = None,
        digests: Sequence[str | None] | None = None,
    ) -> frozenset[int] | None:
        """Positions of ``entities`` that the catalog confirms unchanged by digest (Shoal only).

        Sends ``POST /v1/blueprints/{bp}/entities/unchanged`` with each entity's identifier and
        :func:`~shoal.content_digest.body_digest` instead of its body, in batches of
        ``limits.max_batch_entities``; the catalog stamps the confirmed ones as written,
        exactly as an upsert of the same bodies would, so only the others need
        :meth:`upsert_entities`. Entities whose write may not repeat (search queries) are never
        asked about. ``digests``, if given, holds each entity's digest already (None: do not
        ask about it). Returns None when the catalog does not know the endpoint (Port).
        """
        asked: list[tuple[int, str, str]] = []
        for index, entity in enumerate(entities):
            if digests is not None:
                digest = digests[index]
            else:
                digest = body_digest(entity) if may_repeat(entity) else None
            if digest is not None:
                asked.append((index, entity["identifier"], digest))
        if not asked:
            return frozenset()
        params: Params = [
            ("merge", _flag(merge)),
            ("create_missing_related_entities", _flag(create_missing_related_entities)),
            *self._run_params(run_id),
        ]
        size = self._limits.max_batch_entities
        chunks = [asked[start : start + size] for start in range(0, len(asked), size)]
        answers = await all_or_first_error(
            self._confirm_chunk(blueprint, chunk, params) for chunk in chunks
        )
        confirmed: set[int] = set()
        for answer in answers:
            if answer is None:
                return None
            confirmed.update(answer)
        return frozenset(confirmed)

    async def _confirm_chunk(
        self, blueprint: str, chunk: list[tuple[int, str, str]], params: Params
    ) -> list[int] | None:
        what = f"confirm {len(chunk)} unchanged entities of blueprint {blueprint!r}"
        path = f"/blueprints/{_segment(blueprint)}/entities/unchanged"
        body = {"entities": [{"identifier": i, "digest": d} for _, i, d in chunk]}
        response = await self._session.request(
            "POST", path, what=what, params=params, body=body, exporter=True
        )
        if response.status_code in _UNSUPPORTED_STATUSES:
            return None
        if response.status_code == 413 and len(chunk) > 1:  # a catalog with a lower limit
            first, second = await _in_halves(
                what, chunk, lambda half: self._confirm_chunk(blueprint, half, params)
            )
            return None if first is None or second is None else first + second
        if not response.is_success:
            raise self._load_error(blueprint, response)
        positions = json_object(response, what).get("unchanged")
        if not isinstance(positions, list):
            return []
        return [
            chunk[position][0]
            for position in positions
            if isinstance(position, int)
            and not isinstance(position, bool)
            and 0 <= position < len(chunk)
        ]

    async def delete_entities(
        self,
        blueprint: str,
        identifiers: Sequence[str],
        *,
        delete_dependents: bool,
        run_id: str | None = None,
    ) -> DeleteResult:
        """Delete entities of ``blueprint``; returns what the catalog deleted.

        Sends ``POST /v1/blueprints/{bp}/bulk/entities/delete`` in batches of
        ``limits.delete_batch_size`` (Port: 100; Shoal: 1000), halving a batch the catalog
        answers with 413 (a lower limit). With ``delete_dependents`` the batches go out
        concurrently; without it they go one after another in the given order, because the
        catalog refuses to delete an entity that others still relate to and the caller's order
        (dependents first) must be kept. Identifiers the catalog did not know are simply absent
        from the answer; the entities deleted with them are in it when the catalog says (Shoal's
        ``deletedDependents``). A 4xx raises :class:`LoadError`.
        """
        size = self._limits.delete_batch_size
        chunks = [list(identifiers[i : i + size]) for i in range(0, len(identifiers), size)]
        params: Params = [
            ("delete_dependents", _flag(delete_dependents)),
            *self._run_params(run_id),
        ]
        if delete_dependents:
            results = await all_or_first_error(
                self._delete_chunk(blueprint, chunk, params) for chunk in chunks
            )
        else:
            results = [await self._delete_chunk(blueprint, chunk, params) for chunk in chunks]
        return DeleteResult.combine(results)

    async def search_entities(self, query: JSONObject, include: Sequence[str]) -> list[JSONObject]:
        """``POST /v1/entities/search`` → matching entities projected to ``include`` paths.

        ``query`` is a search query (``{"combinator": "and", "rules": [...]}``); ``include``
        lists paths such as ``identifier``, ``blueprint``, ``properties.color``, sent as repeated
        ``include`` query keys. Calculated properties are excluded, as Ocean does.
        """
        what = "search entities"
        params = [("exclude_calculated_properties", "true"), *(("include", p) for p in include)]
        response = await self._session.request(
            "POST", "/entities/search", what=what, params=params, body=query, exporter=True
        )
        return object_list(ok_body(response, what), "entities", what)

    async def iter_datasource_entities(
        self,
        prefix: str,
        suffix: str,
        before: datetime | None = None,
        limit: int = 5000,
    ) -> AsyncIterator[list[JSONObject]]:
        """Yield pages of ``{identifier, blueprint}`` of the entities whose datasource starts
        with ``prefix`` and ends with ``suffix`` (and, with ``before``, were last updated
        before it), following the ``next`` cursor of
        ``POST /v1/blueprints/entities/datasource-entities``.

        ``before`` must be timezone-aware. Use :attr:`datasource_prefix` and
        :attr:`datasource_suffix` to list this integration's own entities. Raises
        :class:`CatalogUnavailableError` if the catalog repeats a cursor (it would loop forever).
        """
        if before is not None and before.utcoffset() is None:
            message = "before must be a timezone-aware datetime"
            raise ValueError(message)
        what = "list datasource entities"
        path = "/blueprints/entities/datasource-entities"
        body: JSONObject = {
            "datasource_prefix": prefix,
            "datasource_suffix": suffix,
            "limit": limit,
        }
        if before is not None:
            body["before"] = before.isoformat()
        seen: set[str] = set()
        while True:
            response = await self._session.request(
                "POST", path, what=what, body=body, exporter=True
            )
            page = ok_body(response, what)
            yield object_list(page, "entities", what)
            cursor = page.get("next")
            if not cursor:
                return
            if not isinstance(cursor, str) or cursor in seen:
                message = f"{what}: catalog returned an invalid or repeated cursor {cursor!r}"
                raise CatalogUnavailableError(message)
            seen.add(cursor)
            body = {**body, "from": cursor}

    # -- Shoal-only extensions ----------------------------------------------------------------

    async def report_run(self, identifier: str, run: JSONObject) -> bool:
        """``PUT /v1/integration/{id}/runs/{run["id"]}`` with the run record (Shoal only).

        Returns False if the catalog does not support run history (a Port catalog answers 404),
        True once stored. PUT replaces the whole record, so repeating it is safe.
        """
        run_id = run.get("id")
        if not isinstance(run_id, str) or not run_id:
            message = "run record needs a non-empty string 'id'"
            raise ValueError(message)
        what = f"report run {run_id!r} of integration {identifier!r}"
        path = f"/integration/{_segment(identifier)}/runs/{_segment(run_id)}"
        response = await self._session.request("PUT", path, what=what, body=run)
        return self._accepted(response, what)

    async def heartbeat_run(self, identifier: str, run_id: str) -> bool:
        """``POST /v1/integration/{id}/runs/{run_id}/heartbeat`` (Shoal only): the run is alive.

        Returns False if the catalog does not support it. Not retried beyond the safe cases: the
        next heartbeat is the retry.
        """
        what = f"heartbeat of run {run_id!r} of integration {identifier!r}"
        path = f"/integration/{_segment(identifier)}/runs/{_segment(run_id)}/heartbeat"
        response = await self._session.request("POST", path, what=what, policy=RetryPolicy.UNSAFE)
        return self._accepted(response, what)

    async def acquire_lease(self, identifier: str, holder: str, ttl: float) -> JSONObject | None:
        """Take or renew the run lease of an integration (Shoal only).

        Returns the lease (``holder``, ``expiresAt``) when granted, None while another holder's
        lease is live (409 ``lease_held``). A catalog without leases (Port) grants nothing and
        refuses nothing: the result is then a lease held by ``holder`` that never expires.
        """
        what = f"lease of integration {identifier!r}"
        path = f"/integration/{_segment(identifier)}/lease"
        response = await self._session.request(
            "POST", path, what=what, body={"holder": holder, "ttlSeconds": ttl}
        )
        if response.status_code == 409:
            return None
        if not self._accepted(response, what):
            return {"integration": identifier, "holder": holder, "expiresAt": None}
        return object_field(ok_body(response, what), "lease", what)

    async def release_lease(self, identifier: str, holder: str) -> None:
        """Give the run lease up so a standby process can take over at once (Shoal only)."""
        what = f"release lease of integration {identifier!r}"
        path = f"/integration/{_segment(identifier)}/lease"
        response = await self._session.request(
            "DELETE", path, what=what, params=[("holder", holder)]
        )
        self._accepted(response, what)

    def iter_events(self, identifier: str, *, last_event_id: str | None = None) -> EventStream:
        """Server-sent events of ``GET /v1/integration/{id}/events`` (Shoal only).

        Returns an :class:`EventStream` (async iterator and async context manager) over one
        connection, opened on first iteration with ``Last-Event-ID: last_event_id`` if given.
        Reconnecting is the caller's job: when the stream ends or raises
        :class:`CatalogUnavailableError`, call again with ``stream.last_event_id``. A catalog
        without the endpoint raises :class:`NotFoundError` (fall back to polling). The stream
        holds no concurrency slot, and a silence longer than ``limits.event_read_timeout``
        counts as a broken connection, so the server must send keep-alive comments.
        """

        what = f"event stream of integration {identifier!r}"
        path = f"/integration/{_segment(identifier)}/events"

        async def open_stream(resume_from: str | None) -> httpx.Response:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if resume_from:
                headers["Last-Event-ID"] = resume_from
            return await self._session.open_stream(
                path, what=what, headers=headers, read_timeout=self._limits.event_read_timeout
            )

        return EventStream(open_stream, last_event_id=last_event_id)

    # -- internals: entity batches ------------------------------------------------------------

    def _run_params(self, run_id: str | None) -> Params:
        if run_id is None:
            return []
        return [("ocean_info_event_type", "resync"), ("ocean_info_resync_id", run_id)]

    async def _upsert_bulk(
        self, blueprint: str, batch: EntityBatch, params: Params
    ) -> UpsertResult:
        what = f"upsert {len(batch)} entities of blueprint {blueprint!r}"
        path = f"/blueprints/{_segment(blueprint)}/entities/bulk"
        response = await self._session.request(
            "POST", path, what=what, params=params, content=batch.body(), exporter=True
        )
        if response.is_success:  # 200, or 207 with per-index errors
            return self._read_bulk(batch, json_object(response, what))
        if response.status_code == 413:
            if len(batch) == 1:
                return await self._upsert_single(blueprint, batch, params)
            logger.info("%s: body too large (413), splitting it in halves", what)
            halves = batch.halves()
            return UpsertResult.combine(
                await all_or_first_error(self._upsert_split(blueprint, h, params) for h in halves)
            )
        raise self._load_error(blueprint, response)

    async def _upsert_split(
        self, blueprint: str, batch: EntityBatch, params: Params
    ) -> UpsertResult:
        if len(batch) == 1:
            return await self._upsert_single(blueprint, batch, params)
        return await self._upsert_bulk(blueprint, batch, params)

    @staticmethod
    def _read_bulk(batch: EntityBatch, body: JSONObject) -> UpsertResult:
        size = len(batch)
        stored: dict[int, UpsertedEntity] = {}
        failed: dict[int, EntityError] = {}
        for item in object_list(body, "entities", "bulk upsert"):
            position = _index(item, size)
            if position is None:
                continue
            identifier = item.get("identifier")
            if not isinstance(identifier, str):
                identifier = _entity_identifier(batch.entities[position])
            if identifier is None:
                continue  # stored, but under which identifier? counted as unreported below
            created = item.get("created")
            stored[position] = UpsertedEntity(
                batch.indices[position],
                identifier,
                created if isinstance(created, bool) else None,
                unchanged=item.get("unchanged") is True,
            )
        for item in object_list(body, "errors", "bulk upsert"):
            position = _index(item, size)
            if position is None:
                continue
            identifier = item.get("identifier")
            message = item.get("message") or item.get("error") or "refused by the catalog"
            status = item.get("statusCode")
            code = item.get("error")
            failed[position] = EntityError(
                index=batch.indices[position],
                identifier=(
                    identifier
                    if isinstance(identifier, str)
                    else _entity_identifier(batch.entities[position])
                ),
                message=str(message),
                status=status if isinstance(status, int) and not isinstance(status, bool) else None,
                code=code if isinstance(code, str) else None,
            )
            stored.pop(position, None)  # an entity reported both ways failed
        for position in range(size):
            if position not in stored and position not in failed:
                failed[position] = EntityError(
                    index=batch.indices[position],
                    identifier=_entity_identifier(batch.entities[position]),
                    message="the catalog did not report the outcome of this entity",
                )
        return UpsertResult(tuple(stored.values()), tuple(failed.values()))

    async def _upsert_single(
        self, blueprint: str, batch: EntityBatch, params: Params
    ) -> UpsertResult:
        (index,), (part,), (entity,) = batch.indices, batch.parts, batch.entities
        identifier = _entity_identifier(entity)
        what = f"upsert entity {identifier or '(search identifier)'} of blueprint {blueprint!r}"
        path = f"/blueprints/{_segment(blueprint)}/entities"
        response = await self._session.request(
            "POST", path, what=what, params=params, content=part, exporter=True
        )
        status = response.status_code
        if response.is_success:
            stored = json_object(response, what).get("entity")
            resolved = _entity_identifier(stored) if isinstance(stored, dict) else None
            resolved = resolved or identifier
            if resolved is None:
                message = "the catalog did not name the stored entity"
                return UpsertResult(errors=(EntityError(index, None, message, status),))
            return UpsertResult(entities=(UpsertedEntity(index, resolved, status == 201),))
        if status in _ENTITY_LEVEL_STATUSES:
            code, message = server_message(response)
            if identifier is None and status == 404:
                identifier = UNKNOWN_IDENTIFIER  # the search identifier matched nothing
            return UpsertResult(errors=(EntityError(index, identifier, message, status, code),))
        raise self._load_error(blueprint, response)

    async def _delete_chunk(self, blueprint: str, chunk: list[str], params: Params) -> DeleteResult:
        what = f"delete {len(chunk)} entities of blueprint {blueprint!r}"
        path = f"/blueprints/{_segment(blueprint)}/bulk/entities/delete"
        response = await self._session.request(
            "POST", path, what=what, params=params, body={"entities": chunk}, exporter=True
        )
        if response.status_code == 413 and len(chunk) > 1:  # a catalog with a lower limit
            first, second = await _in_halves(
                what, chunk, lambda half: self._delete_chunk(blueprint, half, params)
            )
            return DeleteResult.combine((first, second))
        if not response.is_success:
            raise self._load_error(blueprint, response, action="delete")
        answer = json_object(response, what)
        deleted, dependents = answer.get("deletedEntities"), answer.get("deletedDependents")
        return DeleteResult(
            tuple(i for i in deleted if isinstance(i, str)) if isinstance(deleted, list) else (),
            tuple(
                (d["blueprint"], d["identifier"])
                for d in dependents
                if isinstance(d, dict)
                and isinstance(d.get("blueprint"), str)
                and isinstance(d.get("identifier"), str)
            )
            if isinstance(dependents, list)
            else (),
        )

    @staticmethod
    def _load_error(blueprint: str, response: httpx.Response, action: str = "store") -> ShoalError:
        if response.status_code >= 500:
            return refusal(response, f"{action} entities of blueprint {blueprint!r}")
        message = f"catalog refused to {action} entities of blueprint {blueprint!r}: "
        return LoadError(message + describe(response))

    # -- internals: responses -----------------------------------------------------------------

    @staticmethod
    def _accepted(response: httpx.Response, what: str) -> bool:
        if response.is_success:
            return True
        if response.status_code in _UNSUPPORTED_STATUSES:
            logger.debug("%s: not supported by this catalog (%s)", what, describe(response))
            return False
        raise refusal(response, what)
