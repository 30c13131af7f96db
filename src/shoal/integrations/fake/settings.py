"""Settings of the fake source, readable from ``SHOAL_FAKE_*`` environment variables.

Every field of :class:`FakeSettings` has one environment variable, its name upper-cased
behind the prefix: ``persons`` is ``SHOAL_FAKE_PERSONS``, ``fail_kind`` is
``SHOAL_FAKE_FAIL_KIND``. An empty variable means "use the default"; a variable with the
prefix that names no field is a :class:`~shoal.errors.ConfigError` (it is almost always a typo).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from shoal.errors import ConfigError
from shoal.integrations.fake.kinds import KINDS

__all__ = ["ENV_PREFIX", "FakeSettings"]

ENV_PREFIX: Final = "SHOAL_FAKE_"


@dataclass(frozen=True, slots=True)
class FakeSettings:
    """What the fake source generates and how it misbehaves.

    Attributes:
        persons: how many person slots the organisation has (index ``0 .. persons-1``). In
            generation 0 every slot is present; later generations drop about 5 % of them.
        page_size: items per page (the last page of a kind may be shorter).
        item_size: approximate size in bytes of one person as compact JSON. Persons smaller
            than this get a ``bio`` padding string; it never shrinks a person below its
            natural size (about 330-380 bytes), so small values mean "no padding".
        page_latency: seconds awaited (``asyncio.sleep``) before each page, as a slow API.
        generation: which snapshot of the organisation to serve; see ``docs/integrations/fake.md``.
        seed: selects a different, equally deterministic organisation.
        fail_kind: the kind whose fetch raises :class:`~shoal.errors.SourceError`, or ``None``.
        fail_after_pages: how many pages of ``fail_kind`` are served before the failure.
        null_identifier_every: every k-th person (1-based) has ``"id": null``; 0 turns it off.
    """

    persons: int = 1000
    page_size: int = 1000
    item_size: int = 200
    page_latency: float = 0.0
    generation: int = 0
    seed: int = 0
    fail_kind: str | None = None
    fail_after_pages: int = 0
    null_identifier_every: int = 0

    def __post_init__(self) -> None:
        minimums = {
            "persons": 0,
            "page_size": 1,
            "item_size": 0,
            "generation": 0,
            "fail_after_pages": 0,
            "null_identifier_every": 0,
        }
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"fake settings: {name} must be an integer, got {value!r}")
            if value < minimum:
                raise ConfigError(f"fake settings: {name} must be >= {minimum}, got {value}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"fake settings: seed must be an integer, got {self.seed!r}")
        latency: object = self.page_latency  # typed float, but may come from untyped callers
        if (
            isinstance(latency, bool)
            or not isinstance(latency, int | float)
            or not math.isfinite(latency)
            or latency < 0
        ):
            message = f"fake settings: page_latency must be a finite number >= 0, got {latency!r}"
            raise ConfigError(message)
        if self.fail_kind is not None and self.fail_kind not in KINDS:
            kind = self.fail_kind
            message = f"fake settings: fail_kind must be one of {list(KINDS)}, got {kind!r}"
            raise ConfigError(message)

    @classmethod
    def env_var(cls, field_name: str) -> str:
        """The environment variable that sets ``field_name``."""
        return ENV_PREFIX + field_name.upper()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FakeSettings:
        """Build settings from ``SHOAL_FAKE_*`` variables of ``environ`` (default ``os.environ``).

        Raises :class:`~shoal.errors.ConfigError` for unparsable or out-of-range values and for
        unknown ``SHOAL_FAKE_*`` variables.
        """
        env = os.environ if environ is None else environ
        known = {cls.env_var(f.name): f.name for f in fields(cls)}
        unknown = sorted(key for key in env if key.startswith(ENV_PREFIX) and key not in known)
        if unknown:
            message = f"unknown fake settings {unknown}; known: {sorted(known)}"
            raise ConfigError(message)
        values: dict[str, Any] = {}
        for var, name in known.items():
            raw = env.get(var, "").strip()
            if raw:
                values[name] = _parse(name, var, raw)
        return cls(**values)


def _parse(name: str, var: str, raw: str) -> Any:
    if name == "fail_kind":
        return raw
    try:
        if name == "page_latency":
            return float(raw)
        return int(raw)
    except ValueError:
        expected = "a number" if name == "page_latency" else "an integer"
        raise ConfigError(f"{var}: expected {expected}, got {raw!r}") from None
