"""Unchanged writes by content digest: the bulk upsert's shortcut and the `unchanged` route.

An entity row keeps the digest of the write that produced it; the same body again (same
blueprint, merge flag and datasource) is recognised as unchanged without rereading the row, and
``POST /v1/blueprints/{bp}/entities/unchanged`` lets a client ask by digest instead of sending
the body. Whatever could make the same body write something else must defeat the shortcut.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import orjson

from shoal.content_digest import body_digest, row_digest, row_digester
from tests.catalog.helpers import create_blueprint, ocean_agent, parse_iso

FLAGS = "upsert=true&merge=true&create_missing_related_entities=true"
AGENT = {"User-Agent": ocean_agent("digests")}


async def _setup(admin: httpx.AsyncClient) -> None:
    await create_blueprint(admin, {"identifier": "team"})
    await create_blueprint(
        admin,
        {
            "identifier": "svc",
            "schema": {
                "properties": {
                    "lang": {"type": "string", "enum": ["py", "go"]},
                    "n": {"type": "number"},
                }
            },
            "relations": {"team": {"target": "team"}},
        },
    )


def _svc(identifier: str, lang: str = "py", n: int = 1, team: str | None = "t1") -> Any:
    return {
        "identifier": identifier,
        "title": identifier.upper(),
        "properties": {"lang": lang, "n": n},
        "relations": {"team": team},
    }


async def _bulk(admin: httpx.AsyncClient, entities: list[Any], flags: str = FLAGS) -> Any:
    response = await admin.post(
        f"/v1/blueprints/svc/entities/bulk?{flags}", json={"entities": entities}, headers=AGENT
    )
    assert response.status_code == 200, response.text
    return response.json()["entities"]


async def _confirm(
    admin: httpx.AsyncClient,
    entities: list[Any],
    flags: str = "merge=true&create_missing_related_entities=true",
    agent: dict[str, str] = AGENT,
) -> list[int]:
    items = [{"identifier": e["identifier"], "digest": body_digest(e)} for e in entities]
    response = await admin.post(
        f"/v1/blueprints/svc/entities/unchanged?{flags}", json={"entities": items}, headers=agent
    )
    assert response.status_code == 200, response.text
    unchanged: list[int] = response.json()["unchanged"]
    return unchanged


async def _updated_at(admin: httpx.AsyncClient, identifier: str) -> Any:
    response = await admin.get(f"/v1/blueprints/svc/entities/{identifier}")
    return parse_iso(response.json()["entity"]["updatedAt"])


async def test_the_same_bodies_again_are_unchanged_and_stamped(admin: httpx.AsyncClient) -> None:
    await _setup(admin)
    bodies = [_svc("a"), _svc("b", "go", 2)]
    first = await _bulk(admin, bodies)
    assert [e.get("unchanged", False) for e in first] == [False, False]
    before = await _updated_at(admin, "a")
    await asyncio.sleep(0.01)

    again = await _bulk(admin, bodies)
    assert [e["unchanged"] for e in again] == [True, True]
    assert [e["created"] for e in again] == [False, False]
    stamped = await _updated_at(admin, "a")
    assert stamped > before

    await asyncio.sleep(0.01)
    assert await _confirm(admin, bodies) == [0, 1]
    assert await _updated_at(admin, "a") > stamped
    entity = (await admin.get("/v1/blueprints/svc/entities/b")).json()["entity"]
    assert entity["properties"] == {"lang": "go", "n": 2}
    assert entity["datasource"] == AGENT["User-Agent"]


async def test_every_confirmed_entity_is_stamped_and_no_other(admin: httpx.AsyncClient) -> None:
    await _setup(admin)
    bodies = [_svc(name) for name in ("a", "b", "c", "d", "e")]
    await _bulk(admin, bodies)
    before = {body["identifier"]: await _updated_at(admin, body["identifier"]) for body in bodies}
    await asyncio.sleep(0.01)
    assert await _confirm(admin, bodies[:3]) == [0, 1, 2]  # three: not a size statements come in
    after = {body["identifier"]: await _updated_at(admin, body["identifier"]) for body in bodies}
    assert [after[name] > before[name] for name in "abcde"] == [True] * 3 + [False] * 2


async def test_anything_that_could_change_the_outcome_is_not_confirmed(
    admin: httpx.AsyncClient,
) -> None:
    await _setup(admin)
    await _bulk(admin, [_svc("a"), _svc("b"), _svc("c")])
    # a different body, another merge flag, another datasource
    assert await _confirm(admin, [_svc("a", n=2)]) == []
    assert await _confirm(admin, [_svc("a")], flags="merge=false") == []
    other = {"User-Agent": ocean_agent("someone-else")}
    assert await _confirm(admin, [_svc("a")], agent=other) == []
    # an identifier asked about twice
    assert await _confirm(admin, [_svc("b"), _svc("b")]) == []
    # the same body after another write changed the entity
    await _bulk(admin, [{"identifier": "c", "properties": {"n": 5}}])
    assert await _confirm(admin, [_svc("c")]) == []
    # the blueprint changed (even in a way that does not matter to these entities)
    response = await admin.patch(
        "/v1/blueprints/svc",
        json={
            "schema": {
                "properties": {
                    "lang": {"type": "string", "enum": ["py", "go", "rust"]},
                    "n": {"type": "number"},
                }
            }
        },
    )
    assert response.status_code == 200, response.text
    assert await _confirm(admin, [_svc("a"), _svc("b")]) == []
    # a full write records the digest again
    assert [e["unchanged"] for e in await _bulk(admin, [_svc("a")])] == [True]
    assert await _confirm(admin, [_svc("a"), _svc("b")]) == [0]


async def test_a_relation_cleared_by_a_delete_defeats_the_digest(admin: httpx.AsyncClient) -> None:
    await _setup(admin)
    await _bulk(admin, [_svc("a", team="t9")])
    response = await admin.post(
        "/v1/blueprints/team/bulk/entities/delete?delete_dependents=false",
        json={"entities": ["t9"]},
    )
    assert response.status_code == 200, response.text
    assert await _confirm(admin, [_svc("a", team="t9")]) == []
    outcome = await _bulk(admin, [_svc("a", team="t9")])  # recreates the missing target
    assert outcome[0].get("unchanged", False) is False
    assert (await admin.get("/v1/blueprints/team/entities/t9")).status_code == 200


async def test_search_queries_never_take_the_shortcut(admin: httpx.AsyncClient) -> None:
    await _setup(admin)
    response = await admin.post(
        "/v1/blueprints/team/entities/bulk?upsert=true", json={"entities": [{"identifier": "t1"}]}
    )
    assert response.status_code == 200, response.text
    query = {
        "combinator": "and",
        "rules": [{"property": "$identifier", "operator": "=", "value": "t1"}],
    }
    body = {"identifier": "a", "relations": {"team": query}}
    await _bulk(admin, [body])
    assert await _confirm(admin, [body]) == []
    second = await _bulk(admin, [body])
    assert second[0]["unchanged"] is True  # found by comparing, not by digest


async def test_unchanged_route_refuses_malformed_bodies(admin: httpx.AsyncClient) -> None:
    await _setup(admin)
    for body in ({}, {"entities": [{"identifier": 1, "digest": "x"}]}, {"entities": "x"}):
        response = await admin.post("/v1/blueprints/svc/entities/unchanged", json=body)
        assert response.status_code == 422, response.text
    response = await admin.post(
        "/v1/blueprints/nope/entities/unchanged",
        json={"entities": [{"identifier": "a", "digest": "x"}]},
    )
    assert response.status_code == 404


def test_row_digests_are_stable_whether_the_key_is_hashed_once_or_each_time() -> None:
    # rows written by earlier versions keep their digests: the batch form must not change them
    key = orjson.dumps([{"properties": {"name": {"type": "string"}}}, {}, True, "ds/x"]) * 40
    digest = body_digest({"identifier": "a", "properties": {"name": "A"}})
    assert digest is not None
    expected = hashlib.blake2b(key + digest.encode(), digest_size=16).hexdigest()
    assert row_digest(key, digest) == expected
    batch = row_digester(key)
    assert [batch(digest), batch(digest)] == [expected, expected]
    assert batch(digest[::-1]) != expected
