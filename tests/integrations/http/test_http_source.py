"""The http integration against a real HTTP server on loopback: every pagination style, auth,
retries honouring Retry-After, and failures that must never look like the end of a list."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from shoal.errors import SourceError
from shoal.integrations.http import HttpConfig, create_integration, parse_retry_after
from tests.integrations.http.api import API_KEY, PASSWORD, TOKEN, USER, FakeApi, make_users

FAST_RETRIES = {"maxRetries": 2, "backoff": 0.01, "maxBackoff": 0.05}
STYLES: dict[str, dict[str, Any]] = {
    "single": {"path": "/single/users"},
    "page": {
        "path": "/page/users",
        "itemsPath": ".data",
        "pagination": {"type": "page", "size": 10},
    },
    "offset": {
        "path": "offset/users",  # relative to baseUrl with or without the leading slash
        "itemsPath": ".results",
        "pagination": {"type": "offset", "limit": 7},
    },
    "cursor": {
        "path": "/cursor/users",
        "itemsPath": ".items",
        "pagination": {
            "type": "cursor",
            "cursorPath": ".meta.next",
            "sizeParam": "limit",
            "size": 4,
        },
    },
    "link": {
        "path": "/link/users",
        "pagination": {"type": "link", "sizeParam": "per_page", "size": 6},
    },
}


def make_config(base_url: str, kind: dict[str, Any], **top: Any) -> HttpConfig:
    auth = top.pop("auth", {"type": "bearer", "token": TOKEN})
    return HttpConfig.parse(
        {"baseUrl": base_url, "auth": auth, "retry": FAST_RETRIES, "kinds": {"user": kind}, **top}
    )


async def fetch(config: HttpConfig, into: list[list[Any]] | None = None) -> list[list[Any]]:
    pages = [] if into is None else into
    async for page in create_integration(config).fetch("user"):
        pages.append(page)
    return pages


@pytest.mark.parametrize("style", list(STYLES))
async def test_every_pagination_style_serves_every_item(
    style: str, api: FakeApi, base_url: str
) -> None:
    pages = await fetch(make_config(base_url, STYLES[style]))
    assert [item for page in pages for item in page] == api.users
    sizes = {"single": [25], "page": [10, 10, 5], "offset": [7, 7, 7, 4], "cursor": [4] * 6 + [1],
             "link": [6, 6, 6, 6, 1]}  # fmt: skip
    assert [len(page) for page in pages] == sizes[style]


async def test_requests_carry_params_and_page_parameters(api: FakeApi, base_url: str) -> None:
    kind = {**STYLES["page"], "params": {"state": "active"}}
    await fetch(make_config(base_url, kind))
    assert api.requests("page") == [
        "state=active&page=1&per_page=10",
        "state=active&page=2&per_page=10",
        "state=active&page=3&per_page=10",
        "state=active&page=4&per_page=10",  # the empty page that ends the list
    ]
    await fetch(make_config(base_url, STYLES["offset"]))
    assert api.requests("offset") == [f"offset={n}&limit=7" for n in (0, 7, 14, 21, 25)]


async def test_a_server_capping_page_sizes_is_followed_to_the_end(
    api: FakeApi, base_url: str
) -> None:
    api.page_limit = 3  # asks for 10 per page, gets 3: the list only ends at an empty page
    pages = await fetch(make_config(base_url, STYLES["page"]))
    assert [item for page in pages for item in page] == api.users


async def test_has_more_path_ends_the_list(api: FakeApi, base_url: str) -> None:
    kind = {
        **STYLES["page"],
        "pagination": {"type": "page", "size": 10, "hasMorePath": ".total > (.data | length) * 99"},
    }
    pages = await fetch(make_config(base_url, kind))
    assert len(pages) == 1
    assert len(api.requests("page")) == 1


@pytest.mark.parametrize(
    ("auth", "scheme"),
    [
        ({"type": "bearer", "token": TOKEN}, "bearer"),
        ({"type": "basic", "username": USER, "password": PASSWORD}, "basic"),
        ({"type": "apiKey", "key": API_KEY}, "apiKey"),
        ({"type": "apiKey", "header": "X-Other", "key": API_KEY}, None),
        ({"type": "bearer", "token": "wrong"}, None),
        ({"type": "none"}, None),
    ],
)
async def test_auth(auth: dict[str, str], scheme: str | None, api: FakeApi, base_url: str) -> None:
    api.auth = scheme or "bearer"
    config = make_config(base_url, STYLES["single"], auth=auth)
    if scheme is None:
        with pytest.raises(SourceError, match="HTTP 401"):
            await fetch(config)
        assert len(api.requests("single")) == 1  # a 401 is not retried
    else:
        assert len((await fetch(config))[0]) == 25


async def test_has_more_path_follows_jq_truth(api: FakeApi, base_url: str) -> None:
    # 0 is true in jq (only false and null are not): the list ends at its empty page
    kind = {**STYLES["page"], "pagination": {"type": "page", "size": 10, "hasMorePath": "0"}}
    pages = await fetch(make_config(base_url, kind))
    assert [item for page in pages for item in page] == api.users


async def test_a_403_with_retry_after_is_a_rate_limit_and_retried(
    api: FakeApi, base_url: str
) -> None:
    api.fail("page", 403, after=1, retry_after="0")
    pages = await fetch(make_config(base_url, STYLES["page"]))
    assert [item for page in pages for item in page] == api.users
    api.fail("single", 403)  # without it, a 403 is a refusal: no retry
    with pytest.raises(SourceError, match="HTTP 403"):
        await fetch(make_config(base_url, STYLES["single"]))
    assert len(api.requests("single")) == 1


async def test_429_waits_what_retry_after_asks_then_continues(api: FakeApi, base_url: str) -> None:
    api.fail("page", 429, after=1, retry_after="1")
    started = time.monotonic()
    pages = await fetch(make_config(base_url, STYLES["page"]))
    assert time.monotonic() - started >= 1.0
    assert [item for page in pages for item in page] == api.users
    assert api.requests("page")[1] == api.requests("page")[2]  # page 2 asked again


async def test_503_and_network_style_errors_are_retried_with_backoff(
    api: FakeApi, base_url: str
) -> None:
    api.fail("cursor", 500, 503, after=2)
    pages = await fetch(make_config(base_url, STYLES["cursor"]))
    assert [item for page in pages for item in page] == api.users


async def test_persistent_429_mid_list_fails_the_kind_after_the_pages_it_got(
    api: FakeApi, base_url: str
) -> None:
    api.fail("page", *[429] * 5, after=1, retry_after="0")
    got: list[list[Any]] = []
    with pytest.raises(SourceError, match=r"page=2.*HTTP 429.*gave up after 3 attempts"):
        await fetch(make_config(base_url, STYLES["page"]), got)
    assert [len(page) for page in got] == [10]  # an error, never an early end of the list


@pytest.mark.parametrize("style", ["page", "offset", "cursor", "link"])
async def test_persistent_500_mid_list_is_an_error_for_every_style(
    style: str, api: FakeApi, base_url: str
) -> None:
    api.fail(style, *[500] * 5, after=1)
    got: list[list[Any]] = []
    with pytest.raises(SourceError, match="HTTP 500"):
        await fetch(make_config(base_url, STYLES[style]), got)
    assert len(got) == 1
    assert len(api.requests(style)) == 1 + 3  # one page, then the first try and two retries


async def test_errors_and_logs_show_no_credentials(
    api: FakeApi, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # an API key in the query (set in params): retried (logged), then an error
    api.fail("single", *[500] * 5)
    kind = {**STYLES["single"], "params": {"api_key": "s3cret-key", "q": "x"}}
    with pytest.raises(SourceError, match=re.escape("users?api_key=***&q=***: HTTP 500")) as err:
        await fetch(make_config(base_url, kind))
    assert "retry 1/2" in caplog.text
    # a user and password in baseUrl (which the fake API refuses)
    with_user = base_url.replace("://", "://bot:s3cret-pw@", 1)
    with pytest.raises(SourceError, match="HTTP 401") as refused:
        await fetch(make_config(with_user, STYLES["single"]))
    for text in (str(err.value), str(refused.value), caplog.text):
        assert "s3cret" not in text and "bot:" not in text


async def test_a_retry_after_beyond_the_limit_fails_at_once(api: FakeApi, base_url: str) -> None:
    api.fail("single", 429, retry_after="3600")
    with pytest.raises(
        SourceError, match=r"Retry-After 3600 s, longer than rateLimit\.maxRetryAfter"
    ):
        await fetch(make_config(base_url, STYLES["single"]))


async def test_timeouts_are_retried_then_fail(api: FakeApi, base_url: str) -> None:
    api.delay = 0.8  # the server answers, but too late (it shares this event loop: be generous)
    with pytest.raises(SourceError, match=r"Timeout.*gave up after 3 attempts"):
        await fetch(make_config(base_url, STYLES["single"], timeout=0.2))
    assert len(api.requests("single")) == 3


async def test_client_side_rate_limit_spaces_requests(api: FakeApi, base_url: str) -> None:
    started = time.monotonic()
    await fetch(make_config(base_url, STYLES["page"], rateLimit={"requestsPerSecond": 10}))
    assert time.monotonic() - started >= 0.3  # 4 requests, 0.1 s apart


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ({"path": "/html/users"}, "did not return JSON"),
        ({"path": "/page/users", "itemsPath": ".items"}, "'.items' produced null, not an array"),
        ({"path": "/single/users", "itemsPath": ".[0].name"}, "produced str, not an array"),
        ({"path": "/page/users", "itemsPath": "[.x.y[]]"}, "Cannot iterate over null"),
        ({"path": "/redirect/users"}, "HTTP 302.*redirect to /api/single/users not followed"),
        (
            {"path": "/elsewhere/users", "pagination": {"type": "link"}},
            "refusing to send credentials",
        ),
        ({"path": "https://example.com/users"}, "refusing to send credentials"),
        ({"path": "/missing/users"}, "HTTP 404"),
    ],
)
async def test_broken_responses_are_source_errors(
    kind: dict[str, Any], message: str, base_url: str
) -> None:
    with pytest.raises(SourceError, match=message):
        await fetch(make_config(base_url, kind))


async def test_pagination_that_never_ends_is_an_error(api: FakeApi, base_url: str) -> None:
    kind = {
        **STYLES["page"],
        "pagination": {"type": "page", "pageParam": "p", "size": 10},
        "maxPages": 5,
    }
    with pytest.raises(SourceError, match=r"did not end after maxPages \(5\)"):
        await fetch(make_config(base_url, kind))  # the server ignores `p`: page 1 forever


async def test_post_with_a_body(api: FakeApi, base_url: str) -> None:
    kind = {"path": "/single/users", "method": "POST", "body": {"filter": "all"}}
    assert len((await fetch(make_config(base_url, kind)))[0]) == 25
    assert api.log[-1][0] == "POST"


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:30 GMT", now) == 30
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now) == 0
    assert parse_retry_after("-5") == 0
    for bad in (None, "", "soon", "nan"):
        assert parse_retry_after(bad) is None


def test_make_users() -> None:
    assert make_users(2, revision=1)[1] == {"id": 2, "name": "User 2", "revision": 1}
