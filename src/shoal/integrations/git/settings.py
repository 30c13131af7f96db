"""Settings of the git integration, read from ``SHOAL_GIT_*`` environment variables.

``SHOAL_GIT_PATHS``  directories to scan, separated by :data:`os.pathsep` (``:`` on POSIX);
                     required.
``SHOAL_GIT_DEPTH``  how many directory levels below each path are searched for repositories
                     (default 3; 0 means "each path is itself a repository").

A ``SHOAL_GIT_*`` variable that names no setting is a :class:`~shoal.errors.ConfigError`
(it is almost always a typo).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shoal.errors import ConfigError

__all__ = ["DEPTH_ENV", "ENV_PREFIX", "PATHS_ENV", "GitSettings"]

ENV_PREFIX: Final = "SHOAL_GIT_"
PATHS_ENV: Final = "SHOAL_GIT_PATHS"
DEPTH_ENV: Final = "SHOAL_GIT_DEPTH"
_MAX_DEPTH: Final = 20


@dataclass(frozen=True, slots=True)
class GitSettings:
    """Where to look for git repositories.

    Attributes:
        paths: the directories to scan, made absolute (``~`` expanded) when the settings are
            built. A path that is missing when a resync runs fails the resync's kinds (a
            temporarily unmounted disk must not delete its repositories from the catalog).
        depth: how many directory levels below each path are searched; a directory that is a
            repository is not searched further (submodules and nested repositories are not
            reported separately).
    """

    paths: tuple[Path, ...]
    depth: int = 3

    def __post_init__(self) -> None:
        if not self.paths:
            raise ConfigError("git settings: give at least one directory to scan")
        object.__setattr__(self, "paths", tuple(_absolute(path) for path in self.paths))
        depth: object = self.depth
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= _MAX_DEPTH:
            message = (
                f"git settings: depth must be an integer from 0 to {_MAX_DEPTH}, got {depth!r}"
            )
            raise ConfigError(message)

    @classmethod
    def of(cls, paths: Sequence[str | Path], depth: int = 3) -> GitSettings:
        """Settings for ``paths`` (strings or paths) and ``depth``."""
        return cls(tuple(Path(path) for path in paths), depth)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GitSettings:
        """Build settings from ``SHOAL_GIT_*`` variables of ``environ`` (default ``os.environ``).

        Raises :class:`~shoal.errors.ConfigError` when ``SHOAL_GIT_PATHS`` is unset or empty,
        when ``SHOAL_GIT_DEPTH`` is not an integer from 0 to 20, and for unknown variables.
        """
        env = os.environ if environ is None else environ
        known = {PATHS_ENV, DEPTH_ENV}
        unknown = sorted(key for key in env if key.startswith(ENV_PREFIX) and key not in known)
        if unknown:
            raise ConfigError(f"unknown git settings {unknown}; known: {sorted(known)}")
        paths = [part for part in env.get(PATHS_ENV, "").split(os.pathsep) if part.strip()]
        if not paths:
            message = (
                f"{PATHS_ENV} is not set: give the directories to scan for git repositories, "
                f"separated by {os.pathsep!r}"
            )
            raise ConfigError(message)
        raw_depth = env.get(DEPTH_ENV, "").strip()
        try:
            depth = int(raw_depth) if raw_depth else 3
        except ValueError:
            raise ConfigError(f"{DEPTH_ENV}: expected an integer, got {raw_depth!r}") from None
        return cls.of([path.strip() for path in paths], depth)


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path.expanduser()))
