"""The bundled ``git`` integration: git repositories found on local disks.

It scans ``SHOAL_GIT_PATHS`` (``SHOAL_GIT_DEPTH`` levels deep) for repositories and serves
four kinds through the git CLI: ``repository``, ``branch``, ``contributor`` (commit authors,
with commit counts per repository) and ``codeowner`` (CODEOWNERS rules). See
``docs/integrations/git.md``.

::

    integration = create_integration(GitSettings.of(["~/src"], depth=2))
    integration = create_integration()  # settings from the SHOAL_GIT_* environment variables
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from shoal.integrations._bundled import BundledPackage
from shoal.integrations.git.command import GitError, git_output
from shoal.integrations.git.kinds import (
    BRANCH_KIND,
    CODEOWNER_KIND,
    CONTRIBUTOR_KIND,
    KINDS,
    REPOSITORY_KIND,
)
from shoal.integrations.git.naming import repository_id
from shoal.integrations.git.settings import GitSettings
from shoal.integrations.git.source import discover, fetch_pages
from shoal.sync.integration import Integration, RawBatch

__all__ = [
    "BRANCH_KIND",
    "CODEOWNER_KIND",
    "CONTRIBUTOR_KIND",
    "INTEGRATION_TYPE",
    "KINDS",
    "REPOSITORY_KIND",
    "GitError",
    "GitSettings",
    "create_integration",
    "discover",
    "fetch_pages",
    "load_default_blueprints",
    "load_default_mapping",
    "repository_id",
    "toplevel",
]

INTEGRATION_TYPE = "git"
_PACKAGE = BundledPackage(INTEGRATION_TYPE, Path(__file__).parent)
load_default_mapping = _PACKAGE.load_mapping
load_default_blueprints = _PACKAGE.load_blueprints


async def toplevel(directory: Path) -> Path | None:
    """The top directory of the working tree ``directory`` is in, or ``None``.

    ``None`` also when git is not installed: callers use this to decide whether there is a
    repository to show, not to report errors.
    """
    try:
        code, out = await git_output(directory, "rev-parse", "--show-toplevel", ok=range(256))
    except GitError:
        return None
    return Path(out.strip()) if code == 0 and out.strip() else None


def create_integration(settings: GitSettings | None = None) -> Integration:
    """The git integration with one resync handler per kind.

    ``settings`` defaults to :meth:`GitSettings.from_env` (the ``SHOAL_GIT_*`` variables),
    read once, here.
    """
    resolved = GitSettings.from_env() if settings is None else settings

    async def resync(kind: str) -> AsyncIterator[RawBatch]:
        async for page in fetch_pages(resolved, kind):
            yield page

    return _PACKAGE.integration(KINDS, resync, load_default_mapping())
