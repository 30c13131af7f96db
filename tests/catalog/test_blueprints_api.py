"""Blueprint routes: defaults Port fills in, validation, conflicts and deletes."""

from __future__ import annotations

import httpx

from tests.catalog.helpers import assert_error, create_blueprint


async def test_blueprints(admin: httpx.AsyncClient) -> None:
    group = await create_blueprint(admin, {"identifier": "group"})
    assert group["title"] == "group"
    assert group["schema"]["properties"] == {}
    assert group["schema"]["required"] == []
    assert group["relations"] == {}

    created = await create_blueprint(
        admin,
        {
            "identifier": "item",
            "title": "Item",
            "schema": {"properties": {"color": {"type": "string"}}},
            "relations": {
                "group": {"target": "group"},
                "parts": {"target": "item", "many": True, "required": False, "title": "Parts"},
            },
        },
    )
    assert created["schema"]["required"] == []
    assert created["relations"]["group"] == {
        "target": "group",
        "title": "group",
        "many": False,
        "required": False,
    }
    assert created["relations"]["parts"]["many"] is True
    assert created["relations"]["parts"]["title"] == "Parts"

    fetched = await admin.get("/v1/blueprints/item")
    assert fetched.status_code == 200
    blueprint = fetched.json()["blueprint"]
    assert blueprint["identifier"] == "item"
    assert blueprint["schema"]["properties"] == {"color": {"type": "string"}}
    for relation in blueprint["relations"].values():
        assert {"target", "many", "required", "title"} <= set(relation)
    listed = (await admin.get("/v1/blueprints")).json()["blueprints"]
    assert [b["identifier"] for b in listed] == ["group", "item"]

    # PATCH replaces top-level keys and keeps the others (Ocean's stage 2 and 3)
    patched = await admin.patch(
        "/v1/blueprints/item",
        json={
            "identifier": "item",
            "schema": {"properties": {"n": {"type": "number"}}, "required": ["n"]},
        },
    )
    assert patched.status_code == 200
    blueprint = patched.json()["blueprint"]
    assert blueprint["title"] == "Item"
    assert blueprint["schema"]["properties"] == {"n": {"type": "number"}}
    assert blueprint["schema"]["required"] == ["n"]
    assert set(blueprint["relations"]) == {"group", "parts"}
    assert_error(await admin.patch("/v1/blueprints/item", json={"identifier": "other"}), 422)
    long_name = {"relations": {"r" * 101: {"target": "group"}}}
    assert_error(await admin.patch("/v1/blueprints/item", json=long_name), 422)

    # PUT replaces the whole document
    put = await admin.put("/v1/blueprints/item", json={"title": "Thing"})
    assert put.status_code == 200
    blueprint = put.json()["blueprint"]
    assert blueprint["identifier"] == "item"
    assert blueprint["title"] == "Thing"
    assert blueprint["relations"] == {}
    assert blueprint["schema"]["properties"] == {}

    # delete is refused while entities exist, then succeeds
    upserted = await admin.post(
        "/v1/blueprints/group/entities?upsert=true", json={"identifier": "g1"}
    )
    assert upserted.status_code == 201
    assert_error(await admin.delete("/v1/blueprints/group"), 409)
    await admin.post("/v1/blueprints/group/bulk/entities/delete", json={"entities": ["g1"]})
    deleted = await admin.delete("/v1/blueprints/group")
    assert deleted.status_code == 200
    assert deleted.json() == {"ok": True}
    assert_error(await admin.get("/v1/blueprints/group"), 404, "not_found")

    assert_error(await admin.get("/v1/blueprints/missing"), 404, "not_found")
    assert_error(await admin.patch("/v1/blueprints/missing", json={"title": "x"}), 404, "not_found")
    assert_error(await admin.put("/v1/blueprints/missing", json={"title": "x"}), 404, "not_found")
    assert_error(await admin.delete("/v1/blueprints/missing"), 404, "not_found")

    # nor while another blueprint's relation targets it
    await create_blueprint(admin, {"identifier": "team"})
    await create_blueprint(admin, {"identifier": "app", "relations": {"owner": {"target": "team"}}})
    refused = await admin.delete("/v1/blueprints/team")
    assert_error(refused, 409, "has_dependents")
    assert "relation 'owner' of blueprint 'app'" in refused.json()["message"]
    assert (await admin.patch("/v1/blueprints/app", json={"relations": {}})).status_code == 200
    assert (await admin.delete("/v1/blueprints/team")).status_code == 200

    dangling = {"identifier": "orphan", "relations": {"parent": {"target": "nowhere"}}}
    assert_error(await admin.post("/v1/blueprints", json=dangling), 422, "invalid_request")
    assert_error(await admin.get("/v1/blueprints/orphan"), 404)  # nothing half-created

    for identifier in ("", "has space", "a/b", "x" * 101, 42, None):
        response = await admin.post("/v1/blueprints", json={"identifier": identifier})
        assert_error(response, 422, "invalid_request")
    bad_bodies = [
        {"identifier": "bad", "schema": {"properties": {"p": "string"}}},
        {"identifier": "bad", "schema": {"properties": {"p": {"type": "strnig"}}}},
        {"identifier": "bad", "schema": {"required": "p"}},
        {"identifier": "bad", "relations": {"r": {"many": True}}},
        {"identifier": "bad", "relations": {"r": {"target": "bad", "many": "yes"}}},
        {"identifier": "bad", "title": 5},
    ]
    for body in bad_bodies:
        assert_error(await admin.post("/v1/blueprints", json=body), 422)

    await create_blueprint(admin, {"identifier": "dup"})
    assert_error(await admin.post("/v1/blueprints", json={"identifier": "dup"}), 409)
    # a relation added later must point at an existing blueprint too
    patch = {"relations": {"r": {"target": "nowhere"}}}
    assert_error(await admin.patch("/v1/blueprints/dup", json=patch), 422)
    selfish = await admin.patch("/v1/blueprints/dup", json={"relations": {"me": {"target": "dup"}}})
    assert selfish.status_code == 200
