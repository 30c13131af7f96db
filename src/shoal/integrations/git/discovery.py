"""Finding git repositories below a set of directories (blocking filesystem walk).

A directory is a repository when it has a ``.git`` entry (a directory, or the file a linked
worktree or submodule has) -- a *working tree* -- or when it looks like a bare repository
(``HEAD`` file plus ``objects/`` and ``refs/`` directories). A repository is not searched
further; hidden directories and a few well-known dependency folders (``node_modules``,
``vendor`` ...) are never entered, and symbolic links to directories are not followed (no
cycles, no duplicates). Run :func:`find_repositories` in a worker thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shoal.errors import SourceError

__all__ = ["FoundRepository", "find_repositories", "repository_at"]

log = logging.getLogger("shoal.integrations.git")

_SKIPPED: Final = frozenset({"node_modules", "vendor", "venv", "__pycache__", "site-packages"})


@dataclass(frozen=True, slots=True, order=True)
class FoundRepository:
    """A repository on disk: its directory and whether it is bare (no working tree)."""

    path: Path
    bare: bool


def repository_at(directory: Path) -> FoundRepository | None:
    """The repository whose top directory is ``directory``, or ``None``."""
    if os.path.lexists(directory / ".git"):
        return FoundRepository(directory, bare=False)
    if (
        (directory / "HEAD").is_file()
        and (directory / "objects").is_dir()
        and (directory / "refs").is_dir()
    ):
        return FoundRepository(directory, bare=True)
    return None


def _subdirectories(directory: Path) -> list[Path]:
    try:
        with os.scandir(directory) as entries:
            return sorted(
                Path(entry.path)
                for entry in entries
                if entry.is_dir(follow_symlinks=False)
                and not entry.name.startswith(".")
                and entry.name not in _SKIPPED
            )
    except PermissionError as exc:  # unreadable to us: a stable condition, reported, not fatal
        log.warning("git integration: cannot list %s: %s", directory, exc)
        return []
    except OSError as exc:  # an I/O error may pass: it must not look like fewer repositories
        message = f"git integration: cannot list {directory}: {exc}"
        raise SourceError(message) from exc


def find_repositories(roots: Iterable[Path], depth: int) -> list[FoundRepository]:
    """Every repository at most ``depth`` levels below one of ``roots``, sorted by path.

    A root that does not exist or is not a directory raises :class:`~shoal.errors.SourceError`:
    a missing mount must fail the resync (no deletes), not look like zero repositories.
    Directories this process may not list are logged and skipped; any other error listing one
    (EIO, ESTALE on a network mount) raises SourceError.
    """
    found: dict[Path, FoundRepository] = {}
    for root in roots:
        if not root.is_dir():
            raise SourceError(f"git integration: {root} does not exist or is not a directory")
        level = [root]
        for remaining in range(depth, -1, -1):
            below: list[Path] = []
            for directory in level:
                repository = repository_at(directory)
                if repository is not None:
                    found.setdefault(directory, repository)
                elif remaining:
                    below.extend(_subdirectories(directory))
            level = below
    return sorted(found.values())
