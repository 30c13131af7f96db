"""CatalogClient against recorded Port-like behaviour.

Port cannot run here, so every test describes the server as a plain handler function behind
``httpx.MockTransport``. Response shapes follow docs on Port's API subset (§3, §8): ``{"ok": true,
...}`` bodies, 207 bulk answers with per-index ``errors[]``, 413 for oversized bulk bodies.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st, target

from shoal.catalog.settings import CatalogSettings
from shoal.errors import (
    CatalogUnavailableError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    LoadError,
    NotFoundError,
    UnauthorizedError,
)
from shoal.sync.catalog_client import (
    MIB,
    PORT_LIMITS,
    SHOAL_LIMITS,
    CatalogClient,
    ClientLimits,
    ServerSentEvent,
    SSEDecoder,
    UpsertResult,
)
from shoal.sync.catalog_client.batching import split_batches
from shoal.sync.catalog_client.retry import parse_delay
from shoal.types import JSONObject

BASE_URL = "https://catalog.test"
UA = "port-ocean/fake/1.2.3/my-fake"
EXPORTER_UA = f"{UA}/exporter"

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


# -- a Port-like server -----------------------------------------------------------------------


def reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """A JSON response the way Port sends them (errors are JSON too)."""
    content = orjson.dumps({"ok": status < 400} if body is None else body)
    return httpx.Response(
        status, content=content, headers={"content-type": "application/json", **(headers or {})}
    )


def query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.url.query.decode(), keep_blank_values=True)


def body_of(request: httpx.Request) -> Any:
    return orjson.loads(request.content)


def bulk_ok(request: httpx.Request) -> httpx.Response:
    """Port's answer to a bulk upsert where every entity succeeded."""
    entities = body_of(request)["entities"]
    return reply(
        200,
        {
            "ok": True,
            "entities": [
                {"index": i, "identifier": entity["identifier"], "created": True}
                for i, entity in enumerate(entities)
            ],
            "errors": [],
        },
    )


@dataclass
class Server:
    """Port's auth endpoint plus ``handler`` for everything else; records what it saw."""

    handler: Handler
    tokens: list[str] = field(default_factory=lambda: ["token-1"])
    expires_in: int = 10800
    token_calls: int = 0
    auth_requests: list[httpx.Request] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    @property
    def current_token(self) -> str:
        return self.tokens[min(self.token_calls, len(self.tokens)) - 1]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/access_token":
            self.token_calls += 1
            self.auth_requests.append(request)
            return reply(
                200,
                {
                    "ok": True,
                    "accessToken": self.current_token,
                    "expiresIn": self.expires_in,
                    "tokenType": "Bearer",
                },
            )
        self.requests.append(request)
        result = self.handler(request)
        if inspect.isawaitable(result):
            return await result
        return result


class SleepRecorder:
    """Stands in for asyncio.sleep: records the requested delays, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_client(
    server: Server | Handler,
    *,
    limits: ClientLimits | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    clock: Callable[[], float] | None = None,
) -> CatalogClient:
    if not isinstance(server, Server):
        server = Server(server)
    kwargs: dict[str, Any] = {}
    if clock is not None:
        kwargs["clock"] = clock
    return CatalogClient(
        BASE_URL,
        client_id="id-1",
        client_secret="secret-1",
        integration_identifier="my-fake",
        integration_type="fake",
        integration_version="1.2.3",
        limits=limits,
        transport=httpx.MockTransport(server),
        sleep=sleep or SleepRecorder(),
        rng=random.Random(7),
        **kwargs,
    )


def entities(count: int, start: int = 0) -> list[JSONObject]:
    return [
        {"identifier": f"e{i}", "blueprint": "svc", "properties": {"n": i}}
        for i in range(start, start + count)
    ]


def upsert(
    client: CatalogClient, items: list[JSONObject], **kwargs: Any
) -> Coroutine[Any, Any, UpsertResult]:
    options: dict[str, Any] = {"merge": True, "create_missing_related_entities": True}
    options.update(kwargs)
    return client.upsert_entities("svc", items, **options)


# -- identity, auth, tokens -------------------------------------------------------------------


async def test_user_agents_authorization_and_credentials() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/organization":
            return reply(200, {"ok": True, "organization": {"id": "org", "featureFlags": []}})
        return bulk_ok(request)

    server = Server(handler)
    async with make_client(server) as client:
        organization = await client.get_organization()
        result = await upsert(client, entities(2))

    assert organization == {"id": "org", "featureFlags": []}
    assert result.upserted == ["e0", "e1"]
    (auth,) = server.auth_requests
    assert body_of(auth) == {"clientId": "id-1", "clientSecret": "secret-1"}
    assert "authorization" not in auth.headers
    assert auth.headers["user-agent"] == UA
    org_request, bulk_request = server.requests
    assert org_request.headers["user-agent"] == UA
    assert bulk_request.headers["user-agent"] == EXPORTER_UA  # becomes the entity datasource
    assert {r.headers["authorization"] for r in server.requests} == {"Bearer token-1"}
    assert client.datasource == EXPORTER_UA
    assert client.datasource_prefix == "port-ocean/fake/"
    assert client.datasource_suffix == "/my-fake/exporter"


async def test_one_token_serves_many_concurrent_requests() -> None:
    server = Server(lambda request: reply(200, {"ok": True, "integration": {"identifier": "x"}}))
    async with make_client(server) as client:
        await asyncio.gather(*(client.get_integration("x") for _ in range(40)))
        await client.get_integration("x")
    assert server.token_calls == 1
    assert len(server.requests) == 41


async def test_token_is_refreshed_shortly_before_expiry() -> None:
    clock = FakeClock()
    server = Server(lambda request: reply(200, {"ok": True, "organization": {}}))
    server.tokens = ["token-1", "token-2"]
    server.expires_in = 100  # refresh margin = min(60 s, 10 % of 100 s) = 10 s
    async with make_client(server, clock=clock) as client:
        await client.get_organization()
        clock.now += 89
        await client.get_organization()
        assert server.token_calls == 1
        clock.now += 2  # 91 s after the fetch: within the margin
        await client.get_organization()
    assert server.token_calls == 2
    assert server.requests[-1].headers["authorization"] == "Bearer token-2"


async def test_401_refreshes_the_token_once_and_retries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] != "Bearer token-2":
            return reply(401, {"ok": False, "error": "unauthorized", "message": "expired"})
        return bulk_ok(request)

    server = Server(handler, tokens=["token-1", "token-2"])
    sleep = SleepRecorder()
    async with make_client(server, sleep=sleep) as client:
        result = await upsert(client, entities(3))
    assert result.upserted == ["e0", "e1", "e2"]
    assert server.token_calls == 2
    assert len(server.requests) == 2
    assert sleep.delays == []  # a refresh is not a backoff


async def test_second_401_is_final() -> None:
    server = Server(lambda request: reply(401, {"ok": False, "error": "unauthorized"}))
    async with make_client(server) as client:
        with pytest.raises(UnauthorizedError, match="get organization"):
            await client.get_organization()
    assert server.token_calls == 2
    assert len(server.requests) == 2


async def test_rejected_credentials_raise_unauthorized() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(401, {"ok": False, "error": "unauthorized", "message": "bad secret"})

    async with make_client(handler) as client:
        with pytest.raises(UnauthorizedError, match="bad secret"):
            await client.get_organization()


def test_identity_parts_must_not_contain_slashes() -> None:
    with pytest.raises(ConfigError, match="integration_identifier"):
        CatalogClient(
            BASE_URL,
            client_id="a",
            client_secret="b",
            integration_identifier="my/fake",
            integration_type="fake",
            integration_version="1",
        )


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        ClientLimits(max_concurrency=0)
    with pytest.raises(ConfigError, match="backoff_base"):
        ClientLimits(backoff_base=0)


def test_port_limits_are_ports_documented_limits_and_the_default() -> None:
    """Port: at most 20 entities and 1 MiB per bulk upsert, 100 identifiers per bulk delete."""
    assert (PORT_LIMITS.max_batch_entities, PORT_LIMITS.max_batch_bytes) == (20, MIB)
    assert PORT_LIMITS.delete_batch_size == 100
    assert ClientLimits() == PORT_LIMITS  # a client built without limits is safe against Port


def test_shoal_limits_fit_what_a_shoal_catalog_accepts_by_default() -> None:
    accepted = CatalogSettings().max_bulk_entities
    assert SHOAL_LIMITS.max_batch_entities == SHOAL_LIMITS.delete_batch_size == accepted


# -- bulk upsert ------------------------------------------------------------------------------


async def test_bulk_upsert_query_parameters_and_result() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        items = body_of(request)["entities"]
        return reply(
            200,
            {
                "ok": True,
                "entities": [
                    {"index": i, "identifier": e["identifier"], "created": i % 2 == 0}
                    for i, e in enumerate(items)
                ],
            },
        )

    server = Server(handler)
    async with make_client(server) as client:
        result = await upsert(
            client, entities(3), merge=False, create_missing_related_entities=True, run_id="run-9"
        )
    (request,) = server.requests
    assert request.method == "POST"
    assert request.url.path == "/v1/blueprints/svc/entities/bulk"
    assert query(request) == {
        "upsert": ["true"],
        "merge": ["false"],
        "create_missing_related_entities": ["true"],
        "validation_only": ["false"],
        "ocean_info_event_type": ["resync"],
        "ocean_info_resync_id": ["run-9"],
    }
    assert request.headers["content-type"] == "application/json"
    assert body_of(request) == {"entities": entities(3)}
    assert result.upserted == ["e0", "e1", "e2"]
    assert result.created == ["e0", "e2"]
    assert result.ok


async def test_207_partial_failure_maps_errors_to_input_indices() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        items = body_of(request)["entities"]
        if items[0]["identifier"] == "e0":  # the first batch succeeds
            return bulk_ok(request)
        # Second batch: position 0 fails validation, position 1 has an unresolved search
        # identifier, position 2 is reported nowhere, the rest succeed.
        return reply(
            207,
            {
                "ok": True,
                "entities": [
                    {"index": i, "identifier": items[i]["identifier"] or "?", "created": False}
                    for i in range(3, len(items))
                ],
                "errors": [
                    {
                        "index": 0,
                        "identifier": "e20",
                        "statusCode": 422,
                        "error": "invalid_request",
                        "message": "property n must be string",
                    },
                    {
                        "index": 1,
                        "identifier": "unknown",
                        "statusCode": 404,
                        "error": "not_found",
                        "message": "search identifier matched no entity",
                    },
                ],
            },
        )

    items = entities(25)
    items[21]["identifier"] = {"combinator": "and", "rules": []}
    async with make_client(handler) as client:
        result = await upsert(client, items)

    assert [e.index for e in result.errors] == [20, 21, 22]
    invalid, unresolved, unreported = result.errors
    assert (invalid.identifier, invalid.status, invalid.code) == ("e20", 422, "invalid_request")
    assert invalid.message == "property n must be string"
    assert not invalid.unresolved
    assert unresolved.unresolved
    assert unresolved.identifier == "unknown"
    assert unreported.identifier == "e22"
    assert "did not report" in unreported.message
    assert result.upserted == [f"e{i}" for i in range(25) if i not in (20, 21, 22)]
    assert not result.ok


async def test_413_halves_batches_down_to_single_entity_requests() -> None:
    bulk_sizes: list[int] = []
    single_ids: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/entities/bulk"):
            bulk_sizes.append(len(body_of(request)["entities"]))
            return reply(413, {"ok": False, "error": "payload_too_large", "message": "too big"})
        assert request.url.path == "/v1/blueprints/svc/entities"
        assert query(request)["upsert"] == ["true"]
        entity = body_of(request)
        single_ids.append(entity["identifier"])
        if isinstance(entity["identifier"], dict):
            return reply(404, {"ok": False, "error": "not_found", "message": "no match"})
        if entity["identifier"] == "e3":
            return reply(422, {"ok": False, "error": "invalid_request", "message": "bad"})
        created = entity["identifier"] != "e0"
        return reply(201 if created else 200, {"ok": True, "entity": entity})

    items = entities(8)
    items[5]["identifier"] = {"combinator": "and", "rules": []}
    async with make_client(handler) as client:
        result = await upsert(client, items)

    assert sorted(bulk_sizes, reverse=True) == [8, 4, 4, 2, 2, 2, 2]
    assert len(single_ids) == 8
    assert result.upserted == ["e0", "e1", "e2", "e4", "e6", "e7"]
    assert result.created == ["e1", "e2", "e4", "e6", "e7"]
    bad, unresolved = result.errors
    assert (bad.index, bad.identifier, bad.status, bad.message) == (3, "e3", 422, "bad")
    assert (unresolved.index, unresolved.identifier, unresolved.unresolved) == (5, "unknown", True)


async def test_413_on_a_single_entity_fails_only_that_entity() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(413, {"ok": False, "error": "payload_too_large", "message": "too big"})

    async with make_client(handler) as client:
        result = await upsert(client, entities(1))
    (error,) = result.errors
    assert (error.index, error.identifier, error.status) == (0, "e0", 413)


async def test_other_4xx_on_bulk_raises_load_error_naming_blueprint_status_and_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        message = "Blueprint with identifier svc was not found"
        return reply(404, {"ok": False, "error": "not_found", "message": message})

    async with make_client(handler) as client:
        with pytest.raises(LoadError) as caught:
            await upsert(client, entities(50))
    text = str(caught.value)
    assert "'svc'" in text
    assert "HTTP 404 not_found" in text
    assert "Blueprint with identifier svc was not found" in text


async def test_load_error_in_one_batch_cancels_the_others() -> None:
    finished: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        first = body_of(request)["entities"][0]["identifier"]
        if first == "e20":
            return reply(422, {"ok": False, "error": "invalid_request", "message": "nope"})
        await asyncio.sleep(3600)  # would hang the test if not cancelled
        finished.append(first)
        return bulk_ok(request)

    async with make_client(handler) as client:
        with pytest.raises(LoadError, match="nope"):
            await asyncio.wait_for(upsert(client, entities(60)), timeout=5)
    assert finished == []


async def test_empty_upsert_sends_nothing() -> None:
    server = Server(bulk_ok)
    async with make_client(server) as client:
        result = await upsert(client, [])
    assert result.upserted == []
    assert server.requests == []
    assert server.token_calls == 0


# -- batch limits -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=400_000), max_size=80),
    max_entities=st.integers(min_value=1, max_value=30),
    max_bytes=st.integers(min_value=50, max_value=MIB),
)
def test_split_batches_respects_limits_and_order(
    sizes: list[int], max_entities: int, max_bytes: int
) -> None:
    items = [{"identifier": f"e{i}", "blob": "x" * size} for i, size in enumerate(sizes)]
    batches = split_batches(items, max_entities=max_entities, max_bytes=max_bytes)
    assert [i for batch in batches for i in batch.indices] == list(range(len(items)))
    for batch in batches:
        assert 1 <= len(batch) <= max_entities
        body = batch.body()
        assert body_of(httpx.Request("POST", "/", content=body)) == {
            "entities": [items[i] for i in batch.indices]
        }
        assert len(body) <= max_bytes or len(batch) == 1
    for before, after in itertools.pairwise(batches):
        # Greedy: a batch is closed only when the next entity would not fit.
        grown = split_batches(
            [*before.entities, after.entities[0]], max_entities=max_entities, max_bytes=max_bytes
        )
        assert len(grown) == 2


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    sizes=st.lists(
        # Mostly small entities (the count limit binds) mixed with big ones (the byte limit does).
        st.one_of(st.integers(0, 5_000), st.integers(150_000, 500_000)),
        min_size=1,
        max_size=60,
    )
)
def test_default_limits_never_exceed_20_entities_or_1_mib_per_bulk_body(sizes: list[int]) -> None:
    seen_bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen_bodies.append(request.content)
        return bulk_ok(request)

    items = [{"identifier": f"e{i}", "properties": {"blob": "y" * n}} for i, n in enumerate(sizes)]

    async def scenario() -> list[str]:
        async with make_client(handler) as client:
            result = await upsert(client, items)
        return result.upserted

    upserted = asyncio.run(scenario())
    assert upserted == [f"e{i}" for i in range(len(sizes))]
    for content in seen_bodies:
        assert len(body_of(httpx.Request("POST", "/", content=content))["entities"]) <= 20
        assert len(content) <= MIB
    target(max(len(content) for content in seen_bodies) / MIB)  # steer towards full bodies


async def test_an_entity_bigger_than_the_byte_limit_is_sent_alone() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sizes.append(len(body_of(request)["entities"]))
        return bulk_ok(request)

    items = entities(3)
    items[1]["properties"] = {"blob": "z" * (MIB + 10)}
    async with make_client(handler) as client:
        result = await upsert(client, items)
    assert sizes == [1, 1, 1]
    assert result.upserted == ["e0", "e1", "e2"]


@pytest.mark.parametrize(("concurrency", "batch"), [(8, 20), (3, 5)])
async def test_in_flight_requests_never_exceed_the_concurrency_limit(
    concurrency: int, batch: int
) -> None:
    in_flight = 0
    peak = 0
    limit_reached = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            if in_flight == concurrency:
                limit_reached.set()
            # The first requests wait until the limit is reached, proving it is reachable; any
            # request beyond the limit would get in while they wait and show up in `peak`.
            await asyncio.wait_for(limit_reached.wait(), timeout=5)
            for _ in range(3):
                await asyncio.sleep(0)
            return bulk_ok(request)
        finally:
            in_flight -= 1

    limits = ClientLimits(max_concurrency=concurrency, max_batch_entities=batch)
    async with make_client(handler, limits=limits) as client:
        result = await upsert(client, entities(batch * 25))
    assert peak == concurrency
    assert len(result.upserted) == batch * 25


# -- retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"x-ratelimit-reset": "4"}, 4.0),
        ({"Retry-After": "120"}, 120.0),  # longer than the backoff cap: the server's word wins
        ({"Retry-After": "100000"}, 300.0),  # capped
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # in the past
    ],
)
async def test_429_honours_retry_after(headers: dict[str, str], expected: float) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return reply(429, {"ok": False, "error": "rate_limited"}, headers)
        return bulk_ok(request)

    sleep = SleepRecorder()
    async with make_client(handler, sleep=sleep) as client:
        result = await upsert(client, entities(2))
    assert sleep.delays == [expected]
    assert result.upserted == ["e0", "e1"]


async def test_retry_after_http_date_in_the_future() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return reply(503, {"ok": False}, {"Retry-After": when})
        return reply(200, {"ok": True, "organization": {}})

    sleep = SleepRecorder()
    async with make_client(handler, sleep=sleep) as client:
        await client.get_organization()
    (delay,) = sleep.delays
    assert 17 < delay <= 20


def test_parse_delay_formats() -> None:
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert parse_delay("12", now=now) == 12
    assert parse_delay(str(now.timestamp() + 30), now=now) == pytest.approx(30)
    assert parse_delay(str((now.timestamp() + 5) * 1000), now=now) == pytest.approx(5)
    assert parse_delay("Thu, 26 Nov 2026 12:00:09 GMT", now=now) == 9
    assert parse_delay("2026-11-26T12:00:04Z", now=now) == 4
    assert parse_delay("soon", now=now) is None
    assert parse_delay("nan", now=now) is None
    assert parse_delay("", now=now) is None


async def test_503_then_success_backs_off_with_full_jitter() -> None:
    statuses = iter([503, 502, 504, 408])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses, 200)
        if status != 200:
            return reply(status, {"ok": False, "error": "unavailable"})
        return bulk_ok(request)

    sleep = SleepRecorder()
    async with make_client(handler, sleep=sleep) as client:
        result = await upsert(client, entities(1))
    assert result.upserted == ["e0"]
    assert len(sleep.delays) == 4
    for attempt, delay in enumerate(sleep.delays, start=1):
        assert 0 <= delay <= 0.3 * 2 ** (attempt - 1)


async def test_connection_errors_then_success() -> None:
    failures = 3

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal failures
        if failures:
            failures -= 1
            raise httpx.ConnectError("connection refused", request=request)
        return reply(200, {"ok": True, "integration": {"identifier": "x"}})

    sleep = SleepRecorder()
    async with make_client(handler, sleep=sleep) as client:
        assert await client.get_integration("x") == {"identifier": "x"}
    assert len(sleep.delays) == 3


async def test_exhausted_retries_raise_catalog_unavailable() -> None:
    server = Server(lambda request: reply(503, {"ok": False, "message": "maintenance"}))
    sleep = SleepRecorder()
    async with make_client(server, sleep=sleep) as client:
        with pytest.raises(CatalogUnavailableError, match=r"HTTP 503: maintenance.*10 attempt"):
            await upsert(client, entities(1))
    assert len(server.requests) == 10
    assert len(sleep.delays) == 9
    for attempt, delay in enumerate(sleep.delays, start=1):
        assert 0 <= delay <= min(30.0, 0.3 * 2 ** (attempt - 1))


async def test_exhausted_connection_retries_raise_catalog_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    limits = ClientLimits(max_attempts=3)
    async with make_client(handler, limits=limits) as client:
        with pytest.raises(CatalogUnavailableError, match=r"could not reach.*3 attempt"):
            await client.search_entities({"combinator": "and", "rules": []}, ["identifier"])


async def test_unsafe_writes_are_not_retried_after_they_may_have_been_processed() -> None:
    server = Server(lambda request: reply(503, {"ok": False}))
    async with make_client(server) as client:
        with pytest.raises(CatalogUnavailableError, match="HTTP 503"):
            await client.patch_integration("x", {})
        with pytest.raises(CatalogUnavailableError, match="HTTP 503"):
            await client.create_blueprint({"identifier": "svc"})
    assert len(server.requests) == 2

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    server = Server(timeout)
    async with make_client(server) as client:
        with pytest.raises(CatalogUnavailableError):
            await client.create_integration({"installationId": "x"})
    assert len(server.requests) == 1


async def test_resync_state_reports_are_retried_they_set_absolute_values() -> None:
    # a lost report would leave the integration "running" in the catalog until the next run
    statuses = iter([503, 504])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses, 200)
        if status != 200:
            return reply(status, {"ok": False, "error": "unavailable"})
        return reply(200, {"ok": True, "integration": {"identifier": "x"}})

    server = Server(handler)
    async with make_client(server, sleep=SleepRecorder()) as client:
        assert await client.patch_resync_state("x", {"status": "completed"}) == {"identifier": "x"}
    assert len(server.requests) == 3


async def test_unsafe_writes_are_retried_when_provably_unprocessed() -> None:
    outcomes: list[str] = ["connect", "429", "ok"]

    def handler(request: httpx.Request) -> httpx.Response:
        outcome = outcomes.pop(0)
        if outcome == "connect":
            raise httpx.ConnectError("refused", request=request)
        if outcome == "429":
            return reply(429, {"ok": False}, {"Retry-After": "1"})
        return reply(200, {"ok": True, "integration": {"resyncState": {"status": "running"}}})

    sleep = SleepRecorder()
    async with make_client(handler, sleep=sleep) as client:
        integration = await client.patch_resync_state("x", {"status": "running"})
    assert integration == {"resyncState": {"status": "running"}}
    assert sleep.delays[1] == 1.0


async def test_500_is_retried_for_idempotent_requests_only() -> None:
    statuses = iter([500])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses, 200)
        if request.method == "GET" and status == 200:
            return reply(200, {"ok": True, "blueprint": {"identifier": "svc"}})
        return reply(500, {"ok": False, "error": "internal_error"})

    server = Server(handler)
    async with make_client(server) as client:
        assert await client.get_blueprint("svc") == {"identifier": "svc"}
        with pytest.raises(CatalogUnavailableError, match="HTTP 500"):
            await client.patch_blueprint("svc", {"title": "S"})
    assert [r.method for r in server.requests] == ["GET", "GET", "PATCH"]


# -- cancellation -----------------------------------------------------------------------------


async def test_cancelled_upsert_during_backoff_raises_and_stops_retrying() -> None:
    server = Server(lambda request: reply(503, {"ok": False}))
    sleeping = asyncio.Event()

    async def sleep(delay: float) -> None:
        sleeping.set()
        await asyncio.sleep(3600)

    async with make_client(server, sleep=sleep) as client:
        task = asyncio.create_task(upsert(client, entities(5)))
        await asyncio.wait_for(sleeping.wait(), timeout=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        sent = len(server.requests)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(server.requests) == sent == 1


async def test_cancelled_upsert_with_requests_in_flight_cancels_every_batch() -> None:
    in_flight = 0
    all_started = asyncio.Event()
    started = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, started
        in_flight += 1
        started += 1
        try:
            if started == 3:
                all_started.set()
            await asyncio.sleep(3600)
            return bulk_ok(request)
        finally:
            in_flight -= 1

    async with make_client(handler) as client:
        task = asyncio.create_task(upsert(client, entities(60)))
        await asyncio.wait_for(all_started.wait(), timeout=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert in_flight == 0
        for _ in range(20):
            await asyncio.sleep(0)
        assert started == 3


# -- delete, search, datasource entities ------------------------------------------------------


async def test_delete_entities_in_batches_of_100() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/blueprints/svc/bulk/entities/delete"
        ids = body_of(request)["entities"]
        return reply(200, {"ok": True, "deletedEntities": [i for i in ids if i != "e7"]})

    server = Server(handler)
    ids = [f"e{i}" for i in range(250)]
    async with make_client(server) as client:
        deleted = await client.delete_entities("svc", ids, delete_dependents=False)
    assert deleted.deleted == tuple(i for i in ids if i != "e7")
    assert deleted.dependents == ()
    assert [len(body_of(r)["entities"]) for r in server.requests] == [100, 100, 50]
    assert body_of(server.requests[0])["entities"][0] == "e0"  # sequential, in the given order
    assert all(query(r) == {"delete_dependents": ["false"]} for r in server.requests)
    assert all(r.headers["user-agent"] == EXPORTER_UA for r in server.requests)


async def test_delete_refusal_raises_load_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(403, {"ok": False, "error": "forbidden", "message": "not yours"})

    async with make_client(handler) as client:
        with pytest.raises(LoadError, match=r"delete entities of blueprint 'svc'.*403.*not yours"):
            await client.delete_entities("svc", ["a", "b"], delete_dependents=True)


async def test_search_entities_sends_repeated_include_keys() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, {"ok": True, "entities": [{"identifier": "a", "blueprint": "svc"}]})

    server = Server(handler)
    search = {
        "combinator": "and",
        "rules": [{"property": "$blueprint", "operator": "=", "value": "svc"}],
    }
    async with make_client(server) as client:
        found = await client.search_entities(search, ["identifier", "blueprint", "properties.n"])
    assert found == [{"identifier": "a", "blueprint": "svc"}]
    (request,) = server.requests
    assert request.url.path == "/v1/entities/search"
    assert query(request) == {
        "exclude_calculated_properties": ["true"],
        "include": ["identifier", "blueprint", "properties.n"],
    }
    assert body_of(request) == search
    assert request.headers["user-agent"] == EXPORTER_UA


async def test_datasource_entities_follow_the_next_cursor() -> None:
    pages = {
        None: ([{"identifier": "a", "blueprint": "svc"}], "c1"),
        "c1": ([{"identifier": "b", "blueprint": "svc"}], "c2"),
        "c2": ([{"identifier": "c", "blueprint": "team"}], None),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        found, cursor = pages[body_of(request).get("from")]
        return reply(200, {"ok": True, "entities": found, "next": cursor})

    server = Server(handler)
    before = datetime(2026, 11, 26, 21, 5, 31, 33181, tzinfo=UTC)
    async with make_client(server) as client:
        collected = [
            page
            async for page in client.iter_datasource_entities(
                client.datasource_prefix, client.datasource_suffix, before
            )
        ]
    assert collected == [pages[None][0], pages["c1"][0], pages["c2"][0]]
    bodies = [body_of(r) for r in server.requests]
    assert bodies[0] == {
        "datasource_prefix": "port-ocean/fake/",
        "datasource_suffix": "/my-fake/exporter",
        "limit": 5000,
        "before": "2026-11-26T21:05:31.033181+00:00",
    }
    assert [b.get("from") for b in bodies] == [None, "c1", "c2"]
    assert {r.url.path for r in server.requests} == {"/v1/blueprints/entities/datasource-entities"}


async def test_datasource_entities_detect_a_repeated_cursor() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, {"ok": True, "entities": [], "next": "same"})

    async with make_client(handler) as client:
        with pytest.raises(CatalogUnavailableError, match="repeated cursor"):
            async for _ in client.iter_datasource_entities("p", "s"):
                pass


async def test_datasource_entities_need_an_aware_before() -> None:
    async with make_client(bulk_ok) as client:
        with pytest.raises(ValueError, match="timezone-aware"):
            async for _ in client.iter_datasource_entities("p", "s", datetime(2026, 1, 1)):  # noqa: DTZ001
                pass


# -- integration and blueprint endpoints ------------------------------------------------------


async def test_blueprints_are_read_together_each_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        identifier = request.url.path.rsplit("/", 1)[-1]
        if identifier == "gone":
            return reply(404, {"ok": False, "error": "not_found", "message": "not found"})
        return reply(200, {"ok": True, "blueprint": {"identifier": identifier}})

    server = Server(handler)
    async with make_client(server) as client:
        bodies = await client.get_blueprints(["svc", "gone", "team", "svc"])
    assert bodies == {"svc": {"identifier": "svc"}, "gone": None, "team": {"identifier": "team"}}
    assert sorted(r.url.path for r in server.requests) == [
        "/v1/blueprints/gone",
        "/v1/blueprints/svc",
        "/v1/blueprints/team",
    ]


async def test_missing_integration_and_blueprint_are_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(404, {"ok": False, "error": "not_found", "message": "not found"})

    async with make_client(handler) as client:
        assert await client.get_integration("x") is None
        assert await client.get_blueprint("svc") is None
        with pytest.raises(NotFoundError, match="patch integration 'x'"):
            await client.patch_integration("x", {})


async def test_integration_lifecycle_calls() -> None:
    integration: JSONObject = {"identifier": "x", "config": {}, "resyncState": {"updatedAt": "t"}}

    def handler(request: httpx.Request) -> httpx.Response:
        route = (request.method, request.url.path)
        if route == ("POST", "/v1/integration"):
            return reply(201, {"ok": True, "integration": {**integration, **body_of(request)}})
        if route == ("GET", "/v1/integration/x/resync-request"):
            return reply(200, {"ok": True, "request": {"id": "rr_1", "updatedAt": "t"}})
        if route == ("PATCH", "/v1/integration/x/resync-state"):
            state = {**integration["resyncState"], **body_of(request)}
            return reply(200, {"ok": True, "integration": {**integration, "resyncState": state}})
        if route == ("POST", "/v1/blueprints"):
            return reply(409, {"ok": False, "error": "conflict", "message": "taken"})
        return reply(422, {"ok": False, "error": "invalid_request", "message": "bad"})

    server = Server(handler)
    async with make_client(server) as client:
        created = await client.create_integration({"installationId": "x"})
        assert created["installationId"] == "x"
        assert await client.get_resync_request("x") == {"id": "rr_1", "updatedAt": "t"}
        patched = await client.patch_resync_state("x", {"status": "running"})
        assert patched["resyncState"] == {"updatedAt": "t", "status": "running"}
        with pytest.raises(ConflictError, match="taken"):
            await client.create_blueprint({"identifier": "svc"})
        with pytest.raises(InvalidInputError, match="bad"):
            await client.patch_blueprint("svc", {})
    assert all(r.headers["user-agent"] == UA for r in server.requests)


async def test_no_pending_resync_request_is_none() -> None:
    async with make_client(lambda r: reply(200, {"ok": True, "request": None})) as client:
        assert await client.get_resync_request("x") is None


async def test_non_json_error_body_is_reported_verbatim() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text="<html>denied by proxy</html>")

    async with make_client(handler) as client:
        with pytest.raises(ForbiddenError, match="denied by proxy"):
            await client.get_organization()


async def test_path_segments_are_percent_encoded() -> None:
    server = Server(lambda request: reply(200, {"ok": True, "integration": {}}))
    async with make_client(server) as client:
        await client.get_integration("a/b c+d")
    assert server.requests[0].url.raw_path == b"/v1/integration/a%2Fb%20c%2Bd"


# -- Shoal-only extensions --------------------------------------------------------------------


async def test_report_run_and_heartbeat() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, {"ok": True})

    server = Server(handler)
    run = {"id": "run/1", "status": "running", "trigger": "api"}
    async with make_client(server) as client:
        assert await client.report_run("my-fake", run) is True
        assert await client.heartbeat_run("my-fake", "run/1") is True
    put, heartbeat = server.requests
    assert (put.method, put.url.raw_path) == ("PUT", b"/v1/integration/my-fake/runs/run%2F1")
    assert body_of(put) == run
    assert (heartbeat.method, heartbeat.url.raw_path) == (
        "POST",
        b"/v1/integration/my-fake/runs/run%2F1/heartbeat",
    )
    assert put.headers["user-agent"] == UA


async def test_run_endpoints_on_port_report_unsupported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(404, {"ok": False, "error": "not_found", "message": "route not found"})

    async with make_client(handler) as client:
        assert await client.report_run("x", {"id": "r"}) is False
        assert await client.heartbeat_run("x", "r") is False


# -- server-sent events -----------------------------------------------------------------------

STREAM = (
    ": connected\n"
    "\n"
    "event: resync\n"
    "id: 1\n"
    'data: {"source": "api",\n'
    'data:  "actor": "ana"}\n'
    "\n"
    ":keep-alive\n"
    "retry: 2500\n"
    "event: resync\r\n"
    'data:{"source":"ui"}\r\n'
    "\r\n"
    "id: 7\n"
    "\n"
    "data: plain\r"
    "\r"
    "event: half"
)


def decode_all(chunks: list[str]) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events, decoder


def test_sse_decoder_parses_fields_comments_ids_and_line_endings() -> None:
    events, decoder = decode_all([STREAM])
    assert events == [
        ServerSentEvent("resync", '{"source": "api",\n "actor": "ana"}', "1"),
        ServerSentEvent("resync", '{"source":"ui"}', "1"),  # the id carries over
        ServerSentEvent("message", "plain", "7"),  # an id-only block moved the id forward
    ]
    assert events[0].json() == {"source": "api", "actor": "ana"}
    assert decoder.last_event_id == "7"
    assert decoder.retry_ms == 2500


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=20))
def test_sse_decoder_is_independent_of_chunk_boundaries(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert decode_all(chunks)[0] == decode_all([STREAM])[0]


def test_sse_decoder_edge_cases() -> None:
    events, decoder = decode_all(["\ufeffdata\n\ndata: x\nid: a\x00b\nfoo: bar\n\n", "data: y"])
    # "data" without a colon is an empty data line; an id with NUL is ignored; unknown fields
    # are ignored; the unterminated last event is discarded.
    assert events == [ServerSentEvent("message", ""), ServerSentEvent("message", "x")]
    assert decoder.last_event_id is None
    events, _ = decode_all(["id: 3\ndata: a\n\nid:\ndata: b\n\n"])
    assert [e.id for e in events] == ["3", None]  # an empty id resets it


def sse_response(chunks: list[bytes], *, fail: bool = False) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk
            await asyncio.sleep(0)
        if fail:
            raise httpx.ReadError("connection reset")

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


async def test_event_stream_yields_events_and_tracks_last_event_id() -> None:
    payload = 'id: 41\nevent: resync\ndata: {"actor": "zoë"}\n\nid: 42\n\n'.encode()
    split = payload.index("ë".encode()) + 1  # cut inside the two-byte character
    server = Server(lambda request: sse_response([payload[:split], payload[split:]]))
    async with make_client(server) as client:
        async with client.iter_events("my-fake", last_event_id="40") as stream:
            received = [event async for event in stream]
        assert stream.last_event_id == "42"
    assert received == [ServerSentEvent("resync", '{"actor": "zoë"}', "41")]
    (request,) = server.requests
    assert request.url.path == "/v1/integration/my-fake/events"
    assert request.headers["last-event-id"] == "40"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["authorization"] == "Bearer token-1"


async def test_event_stream_break_raises_unavailable_and_keeps_resume_point() -> None:
    chunks = [b"id: 1\ndata: {}\n\n", b"id: 2\ndata: {}\n\nid: 3\nda"]
    server = Server(lambda request: sse_response(chunks, fail=True))
    received: list[str | None] = []
    async with make_client(server) as client:
        stream = client.iter_events("my-fake")

        async def consume() -> None:
            async for event in stream:
                received.append(event.id)

        with pytest.raises(CatalogUnavailableError, match="connection reset"):
            await consume()
        assert stream.last_event_id == "2"  # "3" never completed
        assert "last-event-id" not in server.requests[0].headers
    assert received == ["1", "2"]


async def test_event_stream_missing_endpoint_raises_not_found() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return reply(404, {"ok": False, "error": "not_found", "message": "route not found"})

    async with make_client(handler) as client:
        with pytest.raises(NotFoundError):
            async for _ in client.iter_events("x"):
                pass


async def test_event_stream_refreshes_token_on_401() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer token-1":
            return reply(401, {"ok": False, "error": "unauthorized"})
        return sse_response([b"data: 1\n\n"])

    server = Server(handler, tokens=["token-1", "token-2"])
    async with make_client(server) as client, client.iter_events("x") as stream:
        assert [event.data async for event in stream] == ["1"]
    assert server.token_calls == 2


async def test_lease_and_run_reports_never_queue_behind_entity_writes() -> None:
    """A delete phase fans out hundreds of requests: the lease renewal and the heartbeat must
    not wait for all of them, or the lease expires mid-run."""
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/bulk/entities/delete"):
            await release.wait()
            return reply(200, {"ok": True, "deletedEntities": body_of(request)["entities"]})
        if request.url.path.endswith("/lease"):
            lease = {"integration": "it", "holder": "me", "expiresAt": "2026-11-27T00:00:00Z"}
            return reply(200, {"ok": True, "lease": lease})
        return reply(200, {"ok": True})

    client = make_client(handler, limits=ClientLimits(max_concurrency=1, delete_batch_size=1))
    try:
        deleting = asyncio.create_task(
            client.delete_entities("svc", ["a", "b", "c"], delete_dependents=False)
        )
        await asyncio.sleep(0.05)  # one delete holds the only slot, two wait for it
        async with asyncio.timeout(2):
            lease = await client.acquire_lease("it", "me", 15)
            await client.heartbeat_run("it", "run_1")
        assert lease is not None and lease["holder"] == "me"
        assert not deleting.done()
        release.set()
        async with asyncio.timeout(2):
            await deleting
    finally:
        release.set()
        await client.aclose()
