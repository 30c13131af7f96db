"""Roles: what members, viewers and integration credentials may do, and expired tokens."""

from __future__ import annotations

import httpx

from shoal.catalog.auth import (
    Principal,
    Role,
    generate_client_id,
    generate_secret,
    issue_token,
)
from shoal.catalog.server import RunningCatalog
from shoal.clock import now_us
from tests.catalog.helpers import (
    OCEAN_BODY,
    assert_error,
    client_as,
    create_blueprint,
    create_integration,
    ocean_agent,
    signing_key,
)


async def test_member_viewer_and_expired_tokens(
    admin: httpx.AsyncClient, catalog: RunningCatalog
) -> None:
    await create_blueprint(admin, {"identifier": "service"})
    await admin.post("/v1/blueprints/service/entities?upsert=true", json={"identifier": "s1"})
    await create_integration(admin, "watched")

    async with client_as(catalog, Role.MEMBER) as member:
        assert (await member.get("/v1/blueprints/service")).status_code == 200
        assert (await member.get("/v1/blueprints/service/entities/s1")).status_code == 200
        assert (await member.get("/v1/integration/watched")).status_code == 200
        search = await member.post("/v1/entities/search", json={"combinator": "and", "rules": []})
        assert [e["identifier"] for e in search.json()["entities"]] == ["s1"]

        triggered = await member.patch("/v1/integration/watched", json={})
        assert triggered.status_code == 200
        request = (await member.get("/v1/integration/watched/resync-request")).json()["request"]
        assert request["source"] == "api"
        assert (
            await member.post("/v1/integration/watched/resync", json={"source": "ui"})
        ).status_code == 201

        assert_error(
            await member.patch("/v1/integration/watched", json={"config": {}}), 403, "forbidden"
        )
        assert_error(
            await member.post("/v1/blueprints", json={"identifier": "x"}), 403, "forbidden"
        )
        assert_error(await member.patch("/v1/blueprints/service", json={"title": "x"}), 403)
        assert_error(await member.delete("/v1/blueprints/service"), 403)
        write = await member.post(
            "/v1/blueprints/service/entities?upsert=true", json={"identifier": "s2"}
        )
        assert_error(write, 403, "forbidden")
        bulk = await member.post(
            "/v1/blueprints/service/entities/bulk", json={"entities": [{"identifier": "s2"}]}
        )
        assert_error(bulk, 403)
        assert_error(await member.delete("/v1/blueprints/service/entities/s1"), 403)
        delete = await member.post(
            "/v1/blueprints/service/bulk/entities/delete", json={"entities": ["s1"]}
        )
        assert_error(delete, 403)
        assert_error(
            await member.post("/v1/integration", json={**OCEAN_BODY, "installationId": "m"}), 403
        )
        assert_error(
            await member.patch("/v1/integration/watched/resync-state", json={"status": "running"}),
            403,
        )

    async with client_as(catalog, Role.VIEWER) as viewer:
        assert (await viewer.get("/v1/integration/watched")).status_code == 200
        assert (await viewer.get("/v1/blueprints/service/entities/s1")).status_code == 200
        assert_error(await viewer.patch("/v1/integration/watched", json={}), 403, "forbidden")
        assert_error(await viewer.post("/v1/integration/watched/resync", json={}), 403)
        write = await viewer.post(
            "/v1/blueprints/service/entities?upsert=true", json={"identifier": "s2"}
        )
        assert_error(write, 403)
    assert (await admin.get("/v1/blueprints/service/entities/s1")).status_code == 200

    key = await signing_key(catalog)
    principal = Principal("someone", Role.ADMIN)
    now = now_us() // 1_000_000
    expired = issue_token(key, principal, now=now - 4 * 3600)
    forged = issue_token("not-the-signing-key-of-this-catalog-0123456789", principal, now=now)
    async with httpx.AsyncClient(base_url=catalog.url) as client:
        for token in (expired, forged):
            response = await client.get(
                "/v1/organization", headers={"Authorization": f"Bearer {token}"}
            )
            body = assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
        assert "expired" in body["message"] or "invalid" in body["message"]
        fresh = issue_token(key, principal, now=now)
        assert (
            await client.get("/v1/organization", headers={"Authorization": f"Bearer {fresh}"})
        ).status_code == 200


async def test_integration_credential(admin: httpx.AsyncClient, catalog: RunningCatalog) -> None:
    await create_blueprint(admin, {"identifier": "service"})
    await create_integration(admin, "other")
    # entities of another integration, one whose *type* equals our identifier
    foreign = [
        ("foreign", ocean_agent("other")),
        ("lookalike", ocean_agent("other", integration_type="mine")),
        ("manual", "shoal-tests"),
    ]
    for identifier, agent in foreign:
        response = await admin.post(
            "/v1/blueprints/service/entities?upsert=true",
            json={"identifier": identifier},
            headers={"User-Agent": agent},
        )
        assert response.status_code == 201

    agent = ocean_agent("mine")
    async with client_as(catalog, Role.INTEGRATION, integration="mine", user_agent=agent) as client:
        assert_error(await client.get("/v1/integration/mine"), 404)  # Ocean creates it on 404
        created = await client.post(
            "/v1/integration", json={**OCEAN_BODY, "installationId": "mine"}
        )
        assert created.status_code == 201
        assert (
            await client.patch("/v1/integration/mine", json={"version": "0.2.0"})
        ).status_code == 200
        state = await client.patch("/v1/integration/mine/resync-state", json={"status": "running"})
        assert state.status_code == 200
        listed = (await client.get("/v1/integration")).json()["integrations"]
        assert [record["identifier"] for record in listed] == ["mine"]

        assert_error(
            await client.post("/v1/integration", json={**OCEAN_BODY, "installationId": "x"}), 403
        )
        assert_error(await client.get("/v1/integration/other"), 403, "forbidden")
        assert_error(await client.patch("/v1/integration/other", json={}), 403)
        assert_error(await client.get("/v1/integration/other/resync-request"), 403)
        assert_error(
            await client.patch("/v1/integration/other/resync-state", json={"status": "running"}),
            403,
        )
        assert_error(await client.patch("/v1/integration/other/config", json={"config": {}}), 403)
        assert_error(await client.get("/v1/integration/other/events"), 403)
        assert_error(
            await client.put(
                "/v1/integration/other/runs/r1", json={"startedAt": "2026-01-01T00:00:00Z"}
            ),
            403,
        )

        written = await client.post(
            "/v1/blueprints/service/entities/bulk?upsert=true",
            json={"entities": [{"identifier": "own"}]},
        )
        assert written.status_code == 200, written.text
        assert (await admin.get("/v1/blueprints/service/entities/own")).json()["entity"][
            "datasource"
        ] == agent
        for wrong in ("shoal-tests", ocean_agent("other"), "port-ocean/t/1/mine-2/exporter", ""):
            response = await client.post(
                "/v1/blueprints/service/entities?upsert=true",
                json={"identifier": "own2"},
                headers={"User-Agent": wrong},
            )
            assert_error(response, 403, "forbidden")

        deleted = await client.post(
            "/v1/blueprints/service/bulk/entities/delete",
            json={"entities": ["own", "foreign", "lookalike", "manual"]},
        )
        assert deleted.status_code == 200
        assert deleted.json()["deletedEntities"] == ["own"]
        for identifier, _ in foreign:
            response = await client.delete(f"/v1/blueprints/service/entities/{identifier}")
            assert response.status_code in (403, 404)
            assert response.json()["ok"] is False
            assert (
                await admin.get(f"/v1/blueprints/service/entities/{identifier}")
            ).status_code == 200


async def test_an_integration_deleting_with_dependents_deletes_only_its_own(
    admin: httpx.AsyncClient, catalog: RunningCatalog
) -> None:
    await create_blueprint(admin, {"identifier": "team"})
    await create_blueprint(
        admin, {"identifier": "service", "relations": {"team": {"target": "team"}}}
    )
    agent = ocean_agent("mine")
    async with client_as(catalog, Role.INTEGRATION, integration="mine", user_agent=agent) as client:
        await client.post("/v1/blueprints/team/entities?upsert=true", json={"identifier": "t1"})
        await client.post(
            "/v1/blueprints/service/entities?upsert=true",
            json={"identifier": "own", "relations": {"team": "t1"}},
        )
        manual = await admin.post(  # someone else's entity pointing at the integration's team
            "/v1/blueprints/service/entities?upsert=true",
            json={"identifier": "manual", "relations": {"team": "t1"}},
        )
        assert manual.status_code == 201

        deleted = await client.post(
            "/v1/blueprints/team/bulk/entities/delete?delete_dependents=true",
            json={"entities": ["t1"]},
        )
        assert deleted.json() == {
            "ok": True,
            "deletedEntities": ["t1"],
            "deletedDependents": [{"blueprint": "service", "identifier": "own"}],
        }
    assert (await admin.get("/v1/blueprints/service/entities/own")).status_code == 404
    kept = (await admin.get("/v1/blueprints/service/entities/manual")).json()["entity"]
    assert kept["relations"]["team"] is None  # not deleted: its relation is cleared


def test_generated_credentials_can_follow_an_option_on_a_command_line() -> None:
    """A token starting with ``-`` would be read as an option (``--client-secret -abc``); one
    in 64 URL-safe tokens starts with it."""
    tokens = [generate_client_id() for _ in range(2000)] + [generate_secret() for _ in range(2000)]
    assert not [token for token in tokens if token.startswith("-")]
    assert len(set(tokens)) == len(tokens)
