"""The ``shoal`` command line: credentials, and clear one-line errors."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson

from shoal.catalog.server import running_catalog
from shoal.catalog.settings import CatalogSettings
from shoal.tuning import YOUNG_THRESHOLD
from tests.conftest import admin_credentials, token_for


async def shoal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shoal.cli", *args, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_credentials_create_prints_a_working_credential(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'c.db'}"
    code, out, _ = await shoal(
        "credentials", "create", "--role", "viewer", "--database-url", database
    )
    assert code == 0
    created = orjson.loads(out)
    assert created["role"] == "viewer"
    settings = CatalogSettings(port=0, data_dir=tmp_path / "data", database_url=database)
    async with running_catalog(settings) as catalog:
        assert not (tmp_path / "data" / "admin-credentials.json").exists()  # not a first start
        assert await token_for(catalog.url, created["clientId"], created["clientSecret"])


async def test_bad_input_is_one_line_and_non_zero(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'c.db'}"
    code, _, err = await shoal(
        "credentials", "create", "--role", "integration", "--database-url", database
    )
    assert code == 1
    assert err.startswith("shoal: an integration credential needs an integration")
    assert len(err.strip().splitlines()) == 1
    code, _, err = await shoal("serve", "--database-url", "mysql://nope")
    assert code == 1 and err.strip().splitlines()[-1].startswith("shoal: unsupported database URL")
    for flags, env, problem in (
        (("--port", "70000"), {}, "catalog setting port must be 0 to 65535, got 70000"),
        ((), {"SHOAL_PORT": "inf"}, "SHOAL_PORT must be a number, got 'inf'"),
        ((), {"SHOAL_PORT": "8000.5"}, "SHOAL_PORT must be a whole number, got '8000.5'"),
        ((), {"SHOAL_RUN_HEARTBEAT_TIMEOUT": "0"}, "run_heartbeat_timeout must be at least"),
        ((), {"SHOAL_MAX_BODY_BYTES": "0"}, "max_body_bytes must be at least 1024"),
    ):
        code, _, err = await shoal("serve", *flags, env=env)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert err.startswith("shoal: ") and problem in err, err
    for url, problem in (
        ("postgresql+psycopg://admin:S3cret@h/db", "unsupported database URL"),
        ("postgresql://admin:S3cret@127.0.0.1:port/db", "cannot be parsed"),
        ("postgresql://admin:S3cret@127.0.0.1:1/db", "cannot open the database"),
    ):
        code, _, err = await shoal("serve", "--database-url", url)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert problem in err and "S3cret" not in err
    code, _, err = await shoal("serve", "--database-url", "sqlite://")
    assert code == 1 and err.strip().splitlines()[-1].startswith(
        "shoal: an in-memory SQLite database cannot hold a catalog"
    )
    code, _, err = await shoal(
        "integration",
        "run",
        "no-such-thing",
        env={"SHOAL_CLIENT_ID": "a", "SHOAL_CLIENT_SECRET": "b"},
    )
    assert code == 1 and "no bundled integration 'no-such-thing'" in err
    code, _, err = await shoal(
        "integration",
        "run",
        "fake",
        env={"SHOAL_CLIENT_ID": "a", "SHOAL_CLIENT_SECRET": "b", "SHOAL_LOG_LEVEL": "loud"},
    )
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("shoal: SHOAL_LOG_LEVEL must be one of DEBUG, INFO"), err


async def test_integration_run_tunes_the_garbage_collector(tmp_path: Path) -> None:
    """``shoal integration run`` collects young objects less often and freezes what it loaded
    (mapping a page allocates tens of thousands of short-lived objects)."""
    seen = tmp_path / "gc.json"
    module = tmp_path / "probe_integration.py"
    module.write_text(
        "import gc, pathlib\n"
        "import orjson\n"
        "from shoal.integrations.fake import FakeSettings, create_integration\n"
        "integration = create_integration(FakeSettings(persons=5))\n"
        "@integration.on_start\n"
        "async def record() -> None:\n"
        f"    pathlib.Path({str(seen)!r}).write_bytes(\n"
        "        orjson.dumps([gc.get_threshold()[0], gc.get_freeze_count()]))\n"
    )
    database = f"sqlite:///{tmp_path / 'c.db'}"
    settings = CatalogSettings(port=0, data_dir=tmp_path / "data", database_url=database)
    async with running_catalog(settings) as catalog:
        credentials = orjson.loads((tmp_path / "data" / "admin-credentials.json").read_bytes())
        code, _, err = await shoal(
            "integration", "run", str(module), "--once", "--identifier", "probe",
            "--catalog-url", catalog.url, "--client-id", credentials["clientId"],
            "--client-secret", credentials["clientSecret"],
        )  # fmt: skip
    assert code == 0, err
    threshold, frozen = orjson.loads(seen.read_bytes())
    assert threshold == YOUNG_THRESHOLD
    assert frozen > 0


async def test_a_first_start_that_cannot_store_the_admin_credential_leaves_none(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.write_text("a file where the data dir should be")  # a volume mounted wrong
    database = f"sqlite:///{tmp_path / 'c.db'}"
    code, _, _ = await shoal(
        "serve", "--port", "0", "--data-dir", str(data_dir), "--database-url", database
    )
    assert code != 0
    data_dir.unlink()  # fixed: the next start creates the credential, and its file, again
    settings = CatalogSettings(port=0, data_dir=data_dir, database_url=database)
    async with running_catalog(settings) as catalog:
        creds = admin_credentials(catalog)  # reads admin-credentials.json
        assert await token_for(catalog.url, creds["clientId"], creds["clientSecret"])


async def test_demo_syncs_into_a_fresh_catalog_and_says_how_to_keep_it(tmp_path: Path) -> None:
    code, out, err = await shoal("demo", "--port", "0", "--data-dir", str(tmp_path / "demo"))
    assert code == 0, err
    assert "fake-org: resync completed" in out
    assert "shoal demo --keep-running" in out  # it stops: no URL that would not answer
    assert "PATCH http" not in out
    assert (tmp_path / "demo" / "shoal.db").exists()
