"""How an integration process runs: catalog, credentials, triggers. Read once, at the edge."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from shoal.env import flag, given, number, whole
from shoal.errors import ConfigError
from shoal.sync.supervisor import Policy

__all__ = ["RunnerSettings"]

_LISTENERS = ("push", "poll", "webhook", "none")


def _check_ranges(settings: RunnerSettings) -> None:
    """The numbers, whether from the environment or from flags, within what they can mean."""
    interval = settings.interval_minutes  # None: the record's; 0: no schedule
    limits = (
        ("scheduled resync interval (minutes, 0 for none)", interval or 1, 0.01),
        ("poll interval (seconds)", settings.poll_interval, 0.1),
        ("batch size", settings.batch_size, 1),
        ("lease TTL (seconds)", settings.lease_ttl, 1),
        ("progress interval (seconds)", settings.progress_interval, 0.01),
    )
    for name, value, low in limits:
        if not (math.isfinite(value) and value >= low):
            message = f"the {name} must be at least {low:g}, got {value!r}"
            raise ConfigError(message)
    if not 0 <= settings.webhook_port <= 65535:
        message = f"the webhook port must be 0 to 65535, got {settings.webhook_port}"
        raise ConfigError(message)


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    catalog_url: str = "http://127.0.0.1:8000"
    client_id: str | None = None
    client_secret: str | None = None
    identifier: str | None = None
    """The integration's identifier in the catalog (default: its type)."""
    resync_on_start: bool = True
    interval_minutes: float | None = None
    """``scheduledResyncInterval`` in minutes; default: the integration record's, if any."""
    listener: str = "push"
    poll_interval: float = 60.0
    policy: Policy = Policy.RESTART
    batch_size: int = 1000
    """Entities per bulk request to a Shoal catalog (its default maximum); Port accepts at most
    20, which the client uses when ``target_is_port``."""
    target_is_port: bool = False
    progress_interval: float = 1.0
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8911
    webhook_url: str | None = None
    once: bool = False
    lease_ttl: float = 15.0
    """Seconds a process holds the integration's run lease without renewing it; a standby
    process takes over after that."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> RunnerSettings:
        defaults = cls()
        listener = environ.get("SHOAL_LISTENER", defaults.listener)
        policy = environ.get("SHOAL_RESYNC_POLICY", defaults.policy.value)
        if policy not in {p.value for p in Policy}:
            message = f"SHOAL_RESYNC_POLICY must be restart or coalesce, got {policy!r}"
            raise ConfigError(message)
        settings = cls(
            catalog_url=environ.get("SHOAL_CATALOG_URL", defaults.catalog_url),
            client_id=environ.get("SHOAL_CLIENT_ID") or None,
            client_secret=environ.get("SHOAL_CLIENT_SECRET") or None,
            identifier=environ.get("SHOAL_INTEGRATION_IDENTIFIER") or None,
            resync_on_start=given(flag(environ, "SHOAL_RESYNC_ON_START"), defaults.resync_on_start),
            interval_minutes=number(environ, "SHOAL_SCHEDULED_RESYNC_INTERVAL"),
            listener=listener,
            poll_interval=given(number(environ, "SHOAL_POLL_INTERVAL"), defaults.poll_interval),
            policy=Policy(policy),
            batch_size=given(whole(environ, "SHOAL_BATCH_SIZE"), defaults.batch_size),
            target_is_port=given(flag(environ, "SHOAL_TARGET_IS_PORT"), defaults.target_is_port),
            webhook_host=environ.get("SHOAL_WEBHOOK_HOST", defaults.webhook_host),
            webhook_port=given(whole(environ, "SHOAL_WEBHOOK_PORT"), defaults.webhook_port),
            webhook_url=environ.get("SHOAL_WEBHOOK_URL") or None,
            lease_ttl=given(number(environ, "SHOAL_LEASE_TTL"), defaults.lease_ttl),
        )
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        _check_ranges(settings)
        if settings.listener not in _LISTENERS:
            message = f"listener must be one of {', '.join(_LISTENERS)}, got {settings.listener!r}"
            raise ConfigError(message)
        if not settings.client_id or not settings.client_secret:
            message = "set SHOAL_CLIENT_ID and SHOAL_CLIENT_SECRET (or --client-id/--client-secret)"
            raise ConfigError(message)
        return settings
