"""Entity routes: upserts (single and bulk), deletes, reconciliation reads and search."""

from __future__ import annotations

import asyncio
import base64
from typing import Any
from urllib.parse import quote_plus

import httpx

from tests.catalog.helpers import assert_error, create_blueprint, iso, ocean_agent, parse_iso

UPSERT = "upsert=true&merge=true&create_missing_related_entities=true"
AGENT = ocean_agent("my-int")


async def _blueprints(admin: httpx.AsyncClient) -> None:
    await create_blueprint(
        admin, {"identifier": "group", "schema": {"properties": {"name": {"type": "string"}}}}
    )
    await create_blueprint(
        admin,
        {
            "identifier": "item",
            "schema": {
                "properties": {
                    "color": {"type": "string"},
                    "n": {"type": "number"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "note": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                }
            },
            "relations": {
                "group": {"target": "group"},
                "parts": {"target": "item", "many": True},
            },
        },
    )


async def _bulk(
    client: httpx.AsyncClient,
    blueprint: str,
    entities: list[Any],
    query: str = UPSERT,
    **kwargs: Any,
) -> httpx.Response:
    return await client.post(
        f"/v1/blueprints/{blueprint}/entities/bulk?{query}", json={"entities": entities}, **kwargs
    )


async def _get(client: httpx.AsyncClient, blueprint: str, identifier: str) -> Any:
    response = await client.get(f"/v1/blueprints/{blueprint}/entities/{quote_plus(identifier)}")
    assert response.status_code == 200, response.text
    return response.json()["entity"]


async def _exists(client: httpx.AsyncClient, blueprint: str, identifier: str) -> bool:
    response = await client.get(f"/v1/blueprints/{blueprint}/entities/{quote_plus(identifier)}")
    if response.status_code == 404:
        assert_error(response, 404, "not_found")
        return False
    assert response.status_code == 200, response.text
    return True


async def test_single_upsert_and_merge(admin: httpx.AsyncClient) -> None:
    await _blueprints(admin)
    url = f"/v1/blueprints/item/entities?{UPSERT}"
    body = {
        "identifier": "svc/a b",
        "blueprint": "item",  # Ocean repeats the blueprint in the body
        "title": "A",
        "team": "platform",
        "properties": {"color": "red", "n": 1},
        "relations": {"group": "g1"},
    }
    created = await admin.post(url, json=body, headers={"User-Agent": AGENT})
    assert created.status_code == 201, created.text
    entity = created.json()["entity"]
    assert entity["identifier"] == "svc/a b"
    assert entity["blueprint"] == "item"
    assert entity["title"] == "A"
    assert entity["icon"] is None
    assert entity["team"] == ["platform"]
    assert entity["properties"] == {"color": "red", "n": 1}
    assert entity["relations"] == {"group": "g1"}
    assert entity["datasource"] == AGENT
    assert entity["createdBy"]
    assert entity["updatedBy"]
    assert parse_iso(entity["createdAt"]) == parse_iso(entity["updatedAt"])
    assert await _get(admin, "item", "svc/a b") == entity  # GET with %2F and +

    # merge=true: only supplied keys change
    updated = await admin.post(url, json={"identifier": "svc/a b", "properties": {"n": 2}})
    assert updated.status_code == 200
    entity2 = updated.json()["entity"]
    assert entity2["properties"] == {"color": "red", "n": 2}
    assert entity2["relations"] == {"group": "g1"}
    assert entity2["title"] == "A"
    assert entity2["datasource"] == "shoal-tests"  # the last writer's User-Agent
    assert entity2["createdAt"] == entity["createdAt"]
    assert parse_iso(entity2["updatedAt"]) > parse_iso(entity["updatedAt"])

    # an identical rewrite is still a write: updatedAt moves (reconciliation's `before` filter)
    same = await admin.post(url, json={"identifier": "svc/a b", "properties": {"n": 2}})
    assert same.status_code == 200
    assert parse_iso(same.json()["entity"]["updatedAt"]) > parse_iso(entity2["updatedAt"])
    assert parse_iso((await _get(admin, "item", "svc/a b"))["updatedAt"]) > parse_iso(
        entity2["updatedAt"]
    )

    # merge=false: the entity is replaced
    replaced = await admin.post(
        "/v1/blueprints/item/entities?upsert=true&merge=false",
        json={"identifier": "svc/a b", "properties": {"color": "blue"}},
    )
    assert replaced.status_code == 200
    entity3 = replaced.json()["entity"]
    assert entity3["properties"] == {"color": "blue"}
    assert entity3["relations"] == {}
    assert entity3["team"] == []
    assert entity3["createdAt"] == entity["createdAt"]

    # without upsert an existing identifier is a conflict
    assert_error(
        await admin.post("/v1/blueprints/item/entities", json={"identifier": "svc/a b"}), 409
    )
    assert_error(await admin.post(url, json={"identifier": "x", "blueprint": "group"}), 422)
    assert_error(await admin.post(url, json={"identifier": "x", "properties": {"n": "one"}}), 422)
    missing_target = await admin.post(
        "/v1/blueprints/item/entities?upsert=true",
        json={"identifier": "x", "relations": {"group": "nope"}},
    )
    assert_error(missing_target, 404, "not_found")  # Ocean: "unmet dependency"
    assert_error(
        await admin.post("/v1/blueprints/nope/entities?upsert=true", json={"identifier": "x"}), 404
    )
    assert_error(await _bulk(admin, "nope", [{"identifier": "x"}]), 404, "not_found")
    assert_error(await admin.get("/v1/blueprints/item/entities/none%2Fhere"), 404, "not_found")

    # what PostgreSQL cannot store is refused up front, as JSON errors
    assert_error(await admin.post(url, json={"identifier": "nul", "title": "a\x00b"}), 422)
    deep: Any = "leaf"
    for _ in range(150):
        deep = {"x": deep}
    assert_error(
        await admin.post(url, json={"identifier": "deep", "properties": {"color": deep}}), 422
    )
    long_target = await admin.post(
        url, json={"identifier": "rel", "relations": {"group": "g" * 1001}}
    )
    assert_error(long_target, 422)
    assert_error(await admin.post(url, json={"identifier": "i" * 1001}), 422)
    assert_error(await admin.get("/v1/blueprints/item/entities/a%00b"), 404, "not_found")
    assert_error(await admin.patch("/v1/integration/a%00b", json={}), 404, "not_found")


async def test_bulk_upserts(admin: httpx.AsyncClient) -> None:
    await _blueprints(admin)
    ok = await _bulk(
        admin,
        "item",
        [
            {
                "identifier": "i1",
                "blueprint": "item",
                "properties": {"color": "red"},
                "relations": {"group": "g1"},
            },
            {"identifier": "i2", "relations": {"parts": ["i1", "i9"], "group": "g1"}},
        ],
        headers={"User-Agent": AGENT},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json() == {
        "ok": True,
        "entities": [
            {"index": 0, "identifier": "i1", "created": True},
            {"index": 1, "identifier": "i2", "created": True},
        ],
        "errors": [],
    }
    bare_group = await _get(admin, "group", "g1")
    assert bare_group["datasource"] == AGENT
    assert bare_group["properties"] == {}
    assert (await _get(admin, "item", "i9"))["datasource"] == AGENT
    assert (await _get(admin, "item", "i2"))["relations"] == {"parts": ["i1", "i9"], "group": "g1"}

    mixed = await _bulk(
        admin,
        "item",
        [
            {"identifier": "v1", "properties": {"color": "green"}},
            {"identifier": "bad-type", "properties": {"n": "many"}},
            {"identifier": "bad-prop", "properties": {"weight": 3}},
            {"identifier": "bad-rel", "relations": {"owner": "x"}},
            {"identifier": "bad-many", "relations": {"group": ["g1", "g2"]}},
            {"identifier": "missing-target", "relations": {"group": "g-absent"}},
            {"identifier": "v2", "relations": {"group": "g1"}},
            {"identifier": "bad id\n"},
        ],
        query="upsert=true&merge=true",
    )
    assert mixed.status_code == 207, mixed.text
    body = mixed.json()
    assert body["ok"] is True
    assert body["entities"] == [
        {"index": 0, "identifier": "v1", "created": True},
        {"index": 6, "identifier": "v2", "created": True},
    ]
    errors = {error["index"]: error for error in body["errors"]}
    assert sorted(errors) == [1, 2, 3, 4, 5, 7]
    for index in (1, 2, 3, 4):
        assert errors[index]["statusCode"] == 422
        assert errors[index]["error"] == "invalid_request"
    assert errors[5]["statusCode"] == 404
    assert errors[5]["identifier"] == "missing-target"
    assert "weight" in errors[2]["message"]
    assert all(isinstance(error["message"], str) for error in errors.values())
    assert await _exists(admin, "item", "v1")
    assert await _exists(admin, "item", "v2")
    for identifier in ("bad-type", "bad-prop", "bad-rel", "bad-many", "missing-target"):
        assert not await _exists(admin, "item", identifier)
    assert not await _exists(admin, "group", "g-absent")

    # validation_only stores nothing, not even missing relation targets
    dry = await _bulk(
        admin,
        "item",
        [{"identifier": "dry", "relations": {"group": "g-dry"}}],
        query=UPSERT + "&validation_only=true",
    )
    assert dry.status_code == 200
    assert dry.json()["entities"] == [{"index": 0, "identifier": "dry", "created": True}]
    assert not await _exists(admin, "item", "dry")
    assert not await _exists(admin, "group", "g-dry")

    too_many = await _bulk(admin, "item", [{"identifier": f"e{i}"} for i in range(1001)])
    assert_error(too_many, 413, "payload_too_large")
    assert not await _exists(admin, "item", "e0")
    assert_error(await admin.post("/v1/blueprints/item/entities/bulk", json={"entity": []}), 422)

    await _bulk(
        admin, "group", [{"identifier": "g1", "properties": {"name": "one"}}, {"identifier": "g2"}]
    )
    await _bulk(
        admin,
        "item",
        [
            {"identifier": "alice", "properties": {"email": "a@x.io", "color": "red"}},
            {"identifier": "bob", "properties": {"email": "b@x.io", "color": "red"}},
        ],
    )

    def by(prop: str, value: Any, operator: str = "=") -> dict[str, Any]:
        return {
            "combinator": "and",
            "rules": [{"property": prop, "operator": operator, "value": value}],
        }

    response = await _bulk(
        admin,
        "item",
        [
            {"identifier": by("email", "a@x.io"), "properties": {"n": 7}},
            {"identifier": by("email", "nobody@x.io"), "properties": {"n": 8}},
            {"identifier": by("color", "red"), "properties": {"n": 9}},  # two matches
            {
                "identifier": "carol",
                "relations": {
                    "group": by("name", "one"),
                    "parts": by("$identifier", ["alice", "bob"], "in"),
                },
            },
            {"identifier": "dave", "relations": {"group": by("$identifier", ["g1", "g2"], "in")}},
        ],
        headers={"User-Agent": AGENT},
    )
    assert response.status_code == 207
    body = response.json()
    assert body["entities"] == [
        {"index": 0, "identifier": "alice", "created": False},
        {"index": 3, "identifier": "carol", "created": True},
    ]
    errors = {error["index"]: error for error in body["errors"]}
    assert errors[1]["identifier"] == "unknown"  # Ocean drops these silently
    assert errors[1]["statusCode"] == 404
    assert errors[2]["identifier"] == "unknown"
    assert errors[4]["identifier"] == "dave"
    numbered = await admin.post(
        f"/v1/blueprints/item/entities/bulk?{UPSERT}", json={"entities": [{"identifier": 5}]}
    )
    assert numbered.status_code == 207
    assert [(e["identifier"], e["statusCode"]) for e in numbered.json()["errors"]] == [("5", 422)]
    alice = await _get(admin, "item", "alice")
    assert alice["properties"] == {"email": "a@x.io", "color": "red", "n": 7}
    assert alice["datasource"] == AGENT
    carol = await _get(admin, "item", "carol")
    assert carol["relations"] == {"group": "g1", "parts": ["alice", "bob"]}

    single = await admin.post(
        f"/v1/blueprints/item/entities?{UPSERT}",
        json={"identifier": by("email", "b@x.io"), "title": "Bob"},
    )
    assert single.status_code == 200
    assert single.json()["entity"]["identifier"] == "bob"
    assert single.json()["entity"]["title"] == "Bob"
    unresolved = await admin.post(
        f"/v1/blueprints/item/entities?{UPSERT}", json={"identifier": by("email", "z")}
    )
    assert_error(unresolved, 404, "not_found")


async def test_deletes(admin: httpx.AsyncClient) -> None:
    await _blueprints(admin)
    await _bulk(
        admin,
        "item",
        [
            {"identifier": "root"},
            {"identifier": "child", "relations": {"parts": ["root", "other"]}},
            {"identifier": "grandchild", "relations": {"parts": ["child"]}},
            {"identifier": "other"},
            {"identifier": "svc/with slash"},
        ],
    )
    await _bulk(admin, "group", [{"identifier": "g"}])
    await _bulk(admin, "item", [{"identifier": "member", "relations": {"group": "g"}}])

    kept = await admin.post(
        "/v1/blueprints/item/bulk/entities/delete?delete_dependents=false",
        json={"entities": ["root", "ghost"]},
    )
    assert kept.status_code == 200
    assert kept.json() == {"ok": True, "deletedEntities": ["root"], "deletedDependents": []}
    assert not await _exists(admin, "item", "root")
    assert (await _get(admin, "item", "child"))["relations"] == {"parts": ["other"]}
    assert await _exists(admin, "item", "grandchild")

    cleared = await admin.post(
        "/v1/blueprints/group/bulk/entities/delete", json={"entities": ["g"]}
    )
    assert cleared.json()["deletedEntities"] == ["g"]
    assert (await _get(admin, "item", "member"))["relations"] == {"group": None}

    cascade = await admin.post(
        "/v1/blueprints/item/bulk/entities/delete?delete_dependents=true",
        json={"entities": ["other"]},
    )
    assert cascade.status_code == 200
    assert cascade.json() == {
        "ok": True,
        "deletedEntities": ["other"],
        "deletedDependents": [  # child relates to other, grandchild to child
            {"blueprint": "item", "identifier": "child"},
            {"blueprint": "item", "identifier": "grandchild"},
        ],
    }
    for identifier in ("other", "child", "grandchild"):
        assert not await _exists(admin, "item", identifier)
    assert await _exists(admin, "item", "member")

    # Ocean < 0.45 deletes one by one, identifiers quote_plus-encoded
    path = f"/v1/blueprints/item/entities/{quote_plus('svc/with slash')}"
    assert (await admin.delete(path)).json() == {"ok": True}
    assert not await _exists(admin, "item", "svc/with slash")
    assert_error(await admin.delete(path), 404, "not_found")
    assert_error(await admin.delete("/v1/blueprints/nope/entities/x"), 404, "not_found")
    bad = await admin.post("/v1/blueprints/item/bulk/entities/delete", json={"entities": [1]})
    assert_error(bad, 422)
    # as many identifiers per request as a bulk upsert may carry entities, and no more
    await _bulk(admin, "item", [{"identifier": "kept"}])
    too_many = await admin.post(
        "/v1/blueprints/item/bulk/entities/delete",
        json={"entities": ["kept", *(f"x{i}" for i in range(1000))]},
    )
    assert_error(too_many, 413, "payload_too_large")
    assert await _exists(admin, "item", "kept")
    most = await admin.post(
        "/v1/blueprints/item/bulk/entities/delete",
        json={"entities": ["kept", *(f"x{i}" for i in range(999))]},
    )
    assert most.json() == {"ok": True, "deletedEntities": ["kept"], "deletedDependents": []}


async def test_datasource_entities(admin: httpx.AsyncClient) -> None:
    await _blueprints(admin)
    mine = ocean_agent("my-int", version="0.1.0")
    upgraded = ocean_agent("my-int", version="0.2.0")
    other = ocean_agent("other-int")
    await _bulk(
        admin, "item", [{"identifier": f"old{i}"} for i in range(5)], headers={"User-Agent": mine}
    )
    await _bulk(admin, "group", [{"identifier": "gold"}], headers={"User-Agent": mine})
    await _bulk(admin, "item", [{"identifier": "foreign"}], headers={"User-Agent": other})
    await _bulk(admin, "item", [{"identifier": "manual"}])
    await asyncio.sleep(0.01)
    cut = iso()
    await asyncio.sleep(0.01)
    await _bulk(
        admin,
        "item",
        [{"identifier": "new0"}, {"identifier": "old0"}],
        headers={"User-Agent": upgraded},
    )

    url = "/v1/blueprints/entities/datasource-entities"
    query = {"datasource_prefix": "port-ocean/testint/", "datasource_suffix": "/my-int/exporter"}
    everything = await admin.post(url, json={**query, "limit": 5000})
    assert everything.status_code == 200
    found = {(e["blueprint"], e["identifier"]) for e in everything.json()["entities"]}
    assert found == {("item", f"old{i}") for i in range(5)} | {("group", "gold"), ("item", "new0")}
    assert everything.json()["next"] is None

    before = (await admin.post(url, json={**query, "limit": 5000, "before": cut})).json()[
        "entities"
    ]
    assert {e["identifier"] for e in before} == {"old1", "old2", "old3", "old4", "gold"}

    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    for _ in range(10):
        page_body: dict[str, Any] = {**query, "limit": 2}
        if cursor is not None:
            page_body["from"] = cursor
        page = (await admin.post(url, json=page_body)).json()
        assert len(page["entities"]) <= 2
        seen.extend((e["blueprint"], e["identifier"]) for e in page["entities"])
        cursor = page["next"]
        if not cursor:
            break
    assert sorted(seen) == sorted(found)  # every entity exactly once

    for limit in (0, -1, "5", 1.5, 10**7):
        assert_error(await admin.post(url, json={**query, "limit": limit}), 422, "invalid_request")
    assert_error(await admin.post(url, json={**query, "before": "not a date"}), 422)
    assert_error(await admin.post(url, json={**query, "from": "garbage!"}), 422)


async def test_search(admin: httpx.AsyncClient) -> None:
    await _blueprints(admin)
    await _bulk(admin, "group", [{"identifier": "g1"}])
    start = iso(seconds=-1)
    await _bulk(
        admin,
        "item",
        [
            {
                "identifier": "i1",
                "title": "One",
                "properties": {"color": "red", "n": 1, "tags": ["a", "b"], "note": "hello world"},
            },
            {
                "identifier": "i2",
                "title": "Two",
                "properties": {"color": "blue", "n": 5, "tags": []},
            },
        ],
    )
    await asyncio.sleep(0.01)
    middle = iso()
    await asyncio.sleep(0.01)
    await _bulk(
        admin,
        "item",
        [
            {
                "identifier": "i3",
                "properties": {"color": "red", "n": 10, "tags": ["b"], "note": ""},
                "relations": {"group": "g1"},
            }
        ],
        headers={"User-Agent": AGENT},
    )
    end = iso(seconds=1)

    async def ids(*rules: Any, combinator: str = "and", items_only: bool = True) -> set[str]:
        scoped = (
            [{"property": "$blueprint", "operator": "=", "value": "item"}] if items_only else []
        )
        body = {
            "combinator": "and",
            "rules": [*scoped, {"combinator": combinator, "rules": list(rules)}],
        }
        response = await admin.post("/v1/entities/search", json=body)
        assert response.status_code == 200, response.text
        return {entity["identifier"] for entity in response.json()["entities"]}

    def rule(prop: str, operator: str, value: Any = None) -> dict[str, Any]:
        return {"property": prop, "operator": operator, "value": value}

    assert await ids(rule("color", "=", "red")) == {"i1", "i3"}
    assert await ids(rule("color", "!=", "red")) == {"i2"}
    assert await ids(rule("color", "in", ["blue", "green"])) == {"i2"}
    assert await ids(rule("color", "notIn", ["blue"])) == {"i1", "i3"}
    assert await ids(rule("note", "contains", "world")) == {"i1"}
    assert await ids(rule("tags", "contains", "b")) == {"i1", "i3"}
    assert await ids(rule("$identifier", "beginsWith", "i")) == {"i1", "i2", "i3"}
    assert await ids(rule("note", "beginsWith", "hel")) == {"i1"}
    assert await ids(rule("note", "endsWith", "world")) == {"i1"}
    assert await ids(rule("$title", "endsWith", "o")) == {"i2"}
    assert await ids(rule("note", "isEmpty")) == {"i2", "i3"}
    assert await ids(rule("tags", "isNotEmpty")) == {"i1", "i3"}
    assert await ids(rule("n", ">", 4)) == {"i2", "i3"}
    assert await ids(rule("n", "<", 5)) == {"i1"}
    assert await ids(rule("n", ">=", 5), rule("n", "<=", 5)) == {"i2"}
    window = {"from": start, "to": end}
    assert await ids(rule("$updatedAt", "between", window)) == {"i1", "i2", "i3"}
    assert await ids(rule("$updatedAt", "notBetween", window)) == set()
    assert await ids(rule("$updatedAt", "between", {"from": middle, "to": end})) == {"i3"}
    assert await ids(rule("$updatedAt", "notBetween", {"from": middle, "to": end})) == {"i1", "i2"}
    assert await ids(rule("$updatedAt", ">", middle)) == {"i3"}
    assert await ids(rule("$datasource", "=", AGENT)) == {"i3"}
    assert await ids({"relation": "group", "operator": "=", "value": "g1"}) == {"i3"}
    nested = [
        {"combinator": "and", "rules": [rule("color", "=", "red"), rule("n", ">", 5)]},
        rule("color", "=", "blue"),
    ]
    assert await ids(*nested, combinator="or") == {"i2", "i3"}
    assert await ids(combinator="and") == {"i1", "i2", "i3"}
    assert await ids(combinator="or") == set()
    assert await ids(combinator="and", items_only=False) == {"g1", "i1", "i2", "i3"}

    # Ocean's skip-unchanged query (§3.17)
    ocean_query = {
        "combinator": "and",
        "rules": [
            {"property": "$identifier", "operator": "in", "value": ["i1", "i2", "i3", "i4"]},
            {"property": "$blueprint", "operator": "=", "value": "item"},
            {"property": "$datasource", "operator": "contains", "value": "port-ocean/testint/"},
            {"property": "$datasource", "operator": "contains", "value": "/my-int/exporter"},
        ],
    }
    projected = await admin.post(
        "/v1/entities/search?exclude_calculated_properties=true"
        "&include=blueprint&include=identifier&include=properties.color&include=relations.group",
        json=ocean_query,
    )
    assert projected.status_code == 200
    assert projected.json() == {
        "ok": True,
        "entities": [
            {
                "blueprint": "item",
                "identifier": "i3",
                "properties": {"color": "red"},
                "relations": {"group": "g1"},
            }
        ],
    }
    empty = await admin.post("/v1/entities/search", json={"combinator": "or", "rules": []})
    assert empty.json() == {"ok": True, "entities": []}
    wrapped = await admin.post(
        "/v1/entities/search?include=identifier&include=properties.color",
        json={"query": {"combinator": "and", "rules": [rule("n", "=", 1)]}},
    )
    assert wrapped.json()["entities"] == [{"identifier": "i1", "properties": {"color": "red"}}]

    for bad in (
        {"combinator": "and", "rules": [rule("color", "~", "red")]},
        {"combinator": "xor", "rules": []},
        {"combinator": "and", "rules": [rule("$nope", "=", 1)]},
        {"combinator": "and", "rules": [rule("$identifier", "in", "i1")]},
        {"combinator": "and", "rules": [rule("$updatedAt", "between", {"from": "x", "to": "y"})]},
        {"rules": "all"},
    ):
        assert_error(await admin.post("/v1/entities/search", json=bad), 422, "invalid_request")


async def test_concurrent_merges_lose_no_update(admin: httpx.AsyncClient) -> None:
    """Batches are planned before they queue for the write lock; one whose rows changed in
    the meantime is planned again, so concurrent merges into one entity all land."""
    await _blueprints(admin)
    changes = [{"color": "red"}, {"n": 7}, {"tags": ["t"]}, {"note": "x"}]
    for round_ in range(4):
        shared = f"shared-{round_}"
        await _bulk(admin, "item", [{"identifier": shared, "properties": {"email": "a@b.io"}}])
        responses = await asyncio.gather(
            *(
                _bulk(
                    admin,
                    "item",
                    [
                        *({"identifier": f"own-{round_}-{w}-{k}"} for k in range(100)),
                        {"identifier": shared, "properties": change},
                    ],
                )
                for w, change in enumerate(changes)
            )
        )
        assert all(response.status_code == 200 for response in responses)
        # a writer that merged over a stale row would have dropped the properties of the
        # writers applied before it
        stored = await _get(admin, "item", shared)
        assert stored["properties"] == {
            "email": "a@b.io", "color": "red", "n": 7, "tags": ["t"], "note": "x"
        }  # fmt: skip


async def test_relation_target_deleted_concurrently(admin: httpx.AsyncClient) -> None:
    """An upsert racing the delete of its relation target never leaves a dangling relation:
    either the upsert came first (and the delete cleared the relation) or it failed."""
    await _blueprints(admin)
    for attempt in range(12):
        group = f"g{attempt}"
        await _bulk(admin, "group", [{"identifier": group}])
        upsert, delete_ = await asyncio.gather(
            _bulk(
                admin,
                "item",
                [{"identifier": f"m{attempt}", "relations": {"group": group}}],
                query="upsert=true&merge=true",
            ),
            admin.post(
                "/v1/blueprints/group/bulk/entities/delete?delete_dependents=false",
                json={"entities": [group]},
            ),
        )
        assert upsert.status_code in (200, 207), upsert.text
        assert delete_.json()["deletedEntities"] == [group]
        if await _exists(admin, "item", f"m{attempt}"):
            assert (await _get(admin, "item", f"m{attempt}"))["relations"]["group"] is None


async def test_a_batch_never_stores_a_relation_to_an_entity_it_refused(
    admin: httpx.AsyncClient,
) -> None:
    """a → b → c → missing, in one batch: c is refused, and so are b and a, which would point
    at entities that do not exist; d → stored entity is kept although its update of e fails."""
    await _blueprints(admin)
    await _bulk(admin, "item", [{"identifier": "e"}])
    response = await _bulk(
        admin,
        "item",
        [
            {"identifier": "a", "relations": {"parts": ["b"]}},
            {"identifier": "b", "relations": {"parts": ["c"]}},
            {"identifier": "c", "relations": {"parts": ["missing"]}},
            {"identifier": "d", "relations": {"parts": ["e"]}},
            {"identifier": "e", "relations": {"parts": ["missing"]}},
        ],
        query="upsert=true&merge=true",
    )
    assert response.status_code == 207, response.text
    refused = {error["identifier"]: error["message"] for error in response.json()["errors"]}
    assert sorted(refused) == ["a", "b", "c", "e"]
    assert refused["a"] == "related entity 'b' of blueprint 'item' does not exist"
    assert [entity["identifier"] for entity in response.json()["entities"]] == ["d"]
    for identifier in "abc":
        assert not await _exists(admin, "item", identifier)
    assert (await _get(admin, "item", "d"))["relations"]["parts"] == ["e"]


async def test_creates_without_upsert_never_overwrite(admin: httpx.AsyncClient) -> None:
    """Without `upsert`, an existing identifier is refused (409), checked in the write itself:
    of concurrent creates of one identifier exactly one wins, and a bulk refuses per entity."""
    await _blueprints(admin)
    for attempt in range(3):
        responses = await asyncio.gather(
            *(
                admin.post(
                    "/v1/blueprints/group/entities",
                    json={"identifier": f"g{attempt}", "properties": {"name": f"n{n}"}},
                )
                for n in range(6)
            )
        )
        codes = sorted(response.status_code for response in responses)
        assert codes == [201, 409, 409, 409, 409, 409], codes
        taken = next(response for response in responses if response.status_code == 409)
        assert_error(taken, 409, "identifier_taken")
        winner = next(response for response in responses if response.status_code == 201)
        stored = await _get(admin, "group", f"g{attempt}")
        assert stored["properties"] == winner.json()["entity"]["properties"]

    response = await _bulk(
        admin, "group", [{"identifier": "g0"}, {"identifier": "new"}, {"identifier": "new"}], ""
    )
    assert response.status_code == 207
    assert [(e["index"], e["statusCode"], e["error"]) for e in response.json()["errors"]] == [
        (0, 409, "identifier_taken"),
        (2, 409, "identifier_taken"),
    ]
    assert [e["identifier"] for e in response.json()["entities"]] == ["new"]


async def test_a_merge_drops_what_the_blueprint_no_longer_defines(
    admin: httpx.AsyncClient,
) -> None:
    await _blueprints(admin)
    await _bulk(admin, "group", [{"identifier": "g1"}])
    body = {"identifier": "i1", "properties": {"color": "red", "note": "x"},
            "relations": {"group": "g1", "parts": []}}  # fmt: skip
    assert (await _bulk(admin, "item", [body])).status_code == 200
    blueprint = (await admin.get("/v1/blueprints/item")).json()["blueprint"]
    del blueprint["schema"]["properties"]["note"]
    del blueprint["relations"]["group"]
    patched = await admin.patch(
        "/v1/blueprints/item",
        json={"schema": blueprint["schema"], "relations": blueprint["relations"]},
    )
    assert patched.status_code == 200, patched.text

    # a resync's merge into the entity is not refused for what it no longer may hold
    again = await _bulk(admin, "item", [{"identifier": "i1", "properties": {"color": "blue"}}])
    assert again.status_code == 200, again.text
    stored = await _get(admin, "item", "i1")
    assert stored["properties"] == {"color": "blue"}
    assert stored["relations"] == {"parts": []}


async def test_both_engines_answer_edge_inputs_alike(admin: httpx.AsyncClient) -> None:
    await _blueprints(admin)
    await _bulk(
        admin,
        "item",
        [{"identifier": "alpha-1", "title": "Alpha"}, {"identifier": "b", "title": None}],
    )
    # text search ignores case, and untitled entities sort first (last in descending order)
    found = await admin.get("/v1/blueprints/item/entities", params={"search": "ALPHA"})
    assert [e["identifier"] for e in found.json()["entities"]] == ["alpha-1"]
    for order, expected in (("asc", ["b", "alpha-1"]), ("desc", ["alpha-1", "b"])):
        page = await admin.get(
            "/v1/blueprints/item/entities", params={"sort": "title", "order": order}
        )
        assert [e["identifier"] for e in page.json()["entities"]] == expected

    # many datasource rules, or one longer than any datasource: answered, not a 500
    many = {
        "combinator": "and",
        "rules": [
            {"property": "$datasource", "operator": "contains", "value": f"x{n}"}
            for n in range(600)
        ],
    }
    assert (await admin.post("/v1/entities/search", json=many)).json()["entities"] == []
    long = "x" * 60_000
    rule = {"property": "$datasource", "operator": "beginsWith", "value": long}
    search = await admin.post("/v1/entities/search", json={"combinator": "and", "rules": [rule]})
    assert search.status_code == 200 and search.json()["entities"] == []
    owned = await admin.post(
        "/v1/blueprints/entities/datasource-entities",
        json={"datasource_prefix": long, "datasource_suffix": ""},
    )
    assert owned.status_code == 200 and owned.json()["entities"] == []

    # a forged cursor holding U+0000 is refused, not a 500 (PostgreSQL cannot hold it)
    forged = base64.urlsafe_b64encode(b'["item", "a\\u0000"]').decode()
    assert_error(
        await admin.post(
            "/v1/blueprints/entities/datasource-entities",
            json={"datasource_prefix": "", "datasource_suffix": "", "from": forged},
        ),
        422,
        "invalid_request",
    )


async def test_a_required_property_may_not_be_null(admin: httpx.AsyncClient) -> None:
    schema = {"properties": {"x": {"type": "string"}, "y": {"type": "string"}}, "required": ["x"]}
    await create_blueprint(admin, {"identifier": "strict", "schema": schema})
    ok = await admin.post(
        f"/v1/blueprints/strict/entities?{UPSERT}",
        json={"identifier": "a", "properties": {"x": "set", "y": None}},
    )
    assert ok.status_code == 201, ok.text
    for properties in ({"x": None}, {"y": "only"}):
        refused = await admin.post(
            f"/v1/blueprints/strict/entities?{UPSERT}",
            json={"identifier": "b", "properties": properties},
        )
        assert_error(refused, 422, "invalid_request")
    assert not await _exists(admin, "strict", "b")
