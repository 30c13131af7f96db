"""Auth, organization, health, metrics, error bodies and the offline API docs."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import stat

import httpx
import orjson
import pytest

from shoal.catalog.api.deps import MAX_JSON_DEPTH, parse_json
from shoal.catalog.server import RunningCatalog
from shoal.errors import InvalidInputError
from tests.catalog.helpers import create_blueprint
from tests.conftest import admin_credentials


async def test_first_start_writes_admin_credential_0600(catalog: RunningCatalog) -> None:
    path = catalog.settings.data_dir / "admin-credentials.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert set(admin_credentials(catalog)) == {"clientId", "clientSecret"}


async def test_access_token_is_a_port_shaped_jwt(catalog: RunningCatalog) -> None:
    creds = admin_credentials(catalog)
    async with httpx.AsyncClient(base_url=catalog.url) as client:
        response = await client.post("/v1/auth/access_token", json=creds)
    body = response.json()
    assert response.status_code == 200
    assert body["ok"] is True
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 10800
    payload = body["accessToken"].split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["isMachine"] is False
    assert claims["role"] == "admin"


async def test_wrong_secret_is_401_json(catalog: RunningCatalog) -> None:
    creds = admin_credentials(catalog)
    async with httpx.AsyncClient(base_url=catalog.url) as client:
        response = await client.post(
            "/v1/auth/access_token", json={"clientId": creds["clientId"], "clientSecret": "nope"}
        )
    assert response.status_code == 401
    assert response.json() == {
        "ok": False,
        "error": "unauthorized",
        "message": "invalid clientId or clientSecret",
    }


async def test_missing_and_bad_tokens_are_401_json(catalog: RunningCatalog) -> None:
    async with httpx.AsyncClient(base_url=catalog.url) as client:
        missing = await client.get("/v1/organization")
        bad = await client.get("/v1/organization", headers={"Authorization": "Bearer x.y.z"})
    for response in (missing, bad):
        assert response.status_code == 401
        assert response.json()["ok"] is False
        assert response.json()["error"] == "unauthorized"


async def test_organization_has_no_feature_flags(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/v1/organization")
    assert response.json()["organization"]["featureFlags"] == []


async def test_unknown_route_is_json_404(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["ok"] is False
    assert response.json()["error"] == "not_found"


async def test_invalid_json_is_400_json(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/v1/entities/search", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


async def test_health_and_metrics(admin: httpx.AsyncClient) -> None:
    assert (await admin.get("/healthz")).json()["ok"] is True
    await admin.get("/v1/organization")
    metrics = (await admin.get("/metrics")).text
    assert "shoal_http_requests_total" in metrics
    assert 'route="/v1/organization"' in metrics


async def test_swagger_ui_is_served_offline_with_authorize(admin: httpx.AsyncClient) -> None:
    page = (await admin.get("/docs")).text
    assert "/docs-assets/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()
    asset = await admin.get("/docs-assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert len(asset.content) > 100_000
    spec = (await admin.get("/openapi.json")).json()
    assert any(
        scheme["type"] == "http" for scheme in spec["components"]["securitySchemes"].values()
    )
    patch = spec["paths"]["/v1/integration/{identifier}"]["patch"]
    assert patch["tags"] == ["Integrations"]


async def test_client_gone_mid_body_is_no_server_error(
    catalog: RunningCatalog, admin: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An aborted resync cancels its uploads: a body cut short writes nothing, logs no error."""
    await create_blueprint(admin, {"identifier": "svc"})
    host, port = catalog.url.removeprefix("http://").split(":")
    token = admin.headers["Authorization"]
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v1/blueprints/svc/entities/bulk HTTP/1.1\r\n"
        + f"Host: {host}\r\nAuthorization: {token}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        + b'{"entities": [{"identifier": "half-'
    )
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.2)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    listed = await admin.get("/v1/blueprints/svc/entities")
    assert listed.status_code == 200
    assert listed.json()["entities"] == []


def _nested(depth: int) -> bytes:
    """JSON whose deepest path crosses ``depth`` containers, arrays and objects in turn, each
    beside a shallow sibling container."""
    body = b"[]"
    for level in range(depth - 1):
        body = b"[{}, " + body + b"]" if level % 2 else b'{"a": [], "b": ' + body + b"}"
    return body


@pytest.mark.parametrize("depth", [1, 2, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH])
def test_json_bodies_may_nest_up_to_the_limit(depth: int) -> None:
    assert parse_json(_nested(depth)) is not None


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, MAX_JSON_DEPTH + 2, 3 * MAX_JSON_DEPTH])
def test_json_bodies_nested_deeper_are_refused(depth: int) -> None:
    with pytest.raises(InvalidInputError, match=f"deeper than {MAX_JSON_DEPTH} levels"):
        parse_json(_nested(depth))
