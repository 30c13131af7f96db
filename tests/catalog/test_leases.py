"""The run lease: one holder at a time, renewable, free again once expired or released."""

from __future__ import annotations

import asyncio

import httpx

from shoal.catalog.store import open_store
from tests.catalog.helpers import assert_error


async def test_one_holder_at_a_time(admin: httpx.AsyncClient) -> None:
    url = "/v1/integration/leased/lease"
    first = await admin.post(url, json={"holder": "a", "ttlSeconds": 0.5})
    assert first.status_code == 200 and first.json()["lease"]["holder"] == "a"
    refused = assert_error(
        await admin.post(url, json={"holder": "b", "ttlSeconds": 5}), 409, "lease_held"
    )
    assert refused["lease"]["holder"] == "a"
    assert (
        await admin.post(url, json={"holder": "a", "ttlSeconds": 0.5})
    ).status_code == 200  # renew
    await asyncio.sleep(0.6)
    assert (
        await admin.post(url, json={"holder": "b", "ttlSeconds": 5})
    ).status_code == 200  # expired
    released = await admin.delete(url, params={"holder": "b"})
    assert released.json() == {"ok": True, "released": True}
    assert (await admin.post(url, json={"holder": "c"})).status_code == 200


async def test_bad_lease_requests_are_422(admin: httpx.AsyncClient) -> None:
    url = "/v1/integration/leased/lease"
    assert_error(await admin.post(url, json={}), 422, "invalid_request")
    assert_error(
        await admin.post(url, json={"holder": "a", "ttlSeconds": "long"}), 422, "invalid_request"
    )
    assert_error(
        await admin.post(url, json={"holder": "a", "ttlSeconds": 10_000}), 422, "invalid_request"
    )


async def test_racing_acquirers_are_never_both_granted(database_url: str) -> None:
    first = await open_store(database_url, base_url="http://x")
    second = await open_store(database_url, base_url="http://x")
    try:
        for n in range(20):
            a, b = await asyncio.gather(
                first.leases.acquire(f"i{n}", "A", 10_000_000),
                second.leases.acquire(f"i{n}", "B", 10_000_000),
            )
            assert a.granted != b.granted
            assert a.holder == b.holder
    finally:
        await first.close()
        await second.close()
