"""Catalog settings, read once at the edge (environment variables and CLI flags)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from shoal.env import given, number, whole
from shoal.errors import ConfigError

__all__ = ["CatalogSettings"]


@dataclass(frozen=True, slots=True)
class CatalogSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("shoal-data")
    database_url: str | None = None
    """Default: a SQLite file in ``data_dir``."""
    public_url: str | None = None
    """Where integrations reach this server (ingest URLs); default ``http://host:port``."""
    run_heartbeat_timeout: float = 60.0
    """Seconds without a heartbeat after which a running resync is marked failed."""
    max_body_bytes: int = 16 * 1024 * 1024
    max_bulk_entities: int = 1000
    """Port accepts 20 per bulk request; Shoal accepts more (413 above this)."""

    def __post_init__(self) -> None:
        limits = (
            ("port", self.port, 0, 65535),  # 0: any free port
            ("run_heartbeat_timeout", self.run_heartbeat_timeout, 0.001, math.inf),
            ("max_body_bytes", self.max_body_bytes, 1024, math.inf),
            ("max_bulk_entities", self.max_bulk_entities, 1, math.inf),
        )
        for name, value, low, high in limits:
            if not low <= value <= high:
                shown = f"{low:g} to {high:g}" if high < math.inf else f"at least {low:g}"
                message = f"catalog setting {name} must be {shown}, got {value!r}"
                raise ConfigError(message)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'shoal.db').resolve()}"

    @property
    def resolved_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> CatalogSettings:
        defaults = cls()  # slots: the class attributes are descriptors, not the defaults
        settings = cls(
            host=environ.get("SHOAL_HOST", defaults.host),
            port=given(whole(environ, "SHOAL_PORT"), defaults.port),
            data_dir=Path(environ.get("SHOAL_DATA_DIR", str(defaults.data_dir))),
            database_url=environ.get("SHOAL_DATABASE_URL") or None,
            public_url=environ.get("SHOAL_PUBLIC_URL") or None,
            run_heartbeat_timeout=given(
                number(environ, "SHOAL_RUN_HEARTBEAT_TIMEOUT"), defaults.run_heartbeat_timeout
            ),
            max_body_bytes=given(whole(environ, "SHOAL_MAX_BODY_BYTES"), defaults.max_body_bytes),
            max_bulk_entities=given(
                whole(environ, "SHOAL_MAX_BULK_ENTITIES"), defaults.max_bulk_entities
            ),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
