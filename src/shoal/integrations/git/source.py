"""The resync handlers' side of the git integration: discover, then ask each repository.

Every kind discovers the repositories afresh (a filesystem walk, see :mod:`.discovery`) and
asks up to :data:`CONCURRENCY` repositories at a time. Any git failure in any repository
raises :class:`~shoal.errors.SourceError` for the kind, so the resync skips its delete phase
instead of deleting what it could not read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, Final, TypeVar

from shoal.errors import ConfigError
from shoal.integrations.git.discovery import find_repositories
from shoal.integrations.git.items import (
    ContributorTally,
    branch_items,
    codeowner_items,
    repository_item,
)
from shoal.integrations.git.kinds import (
    BRANCH_KIND,
    CODEOWNER_KIND,
    CONTRIBUTOR_KIND,
    REPOSITORY_KIND,
)
from shoal.integrations.git.repository import Repository
from shoal.integrations.git.settings import GitSettings
from shoal.types import JSONObject

__all__ = ["CONCURRENCY", "discover", "fetch_pages"]

CONCURRENCY: Final = 8
"""Repositories asked at the same time (each runs a few short git processes)."""
_PAGE: Final = 500

_T = TypeVar("_T")


async def discover(settings: GitSettings) -> list[Repository]:
    """The repositories below ``settings.paths``, by path (the walk runs in a thread)."""
    found = await asyncio.to_thread(find_repositories, settings.paths, settings.depth)
    return [Repository.of(repository) for repository in found]


async def _each(
    repos: Sequence[Repository], ask: Callable[[Repository], Coroutine[Any, Any, _T]]
) -> AsyncIterator[list[_T]]:
    """``ask`` every repository, :data:`CONCURRENCY` at a time; yield each round's answers.

    The first failure cancels the rest of its round and is raised as itself (not as an
    exception group), so the resync records git's own message.
    """
    for start in range(0, len(repos), CONCURRENCY):
        try:
            async with asyncio.TaskGroup() as group:
                batch = repos[start : start + CONCURRENCY]
                tasks = [group.create_task(ask(repo)) for repo in batch]
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None
        yield [task.result() for task in tasks]


def _pages(items: list[JSONObject]) -> list[list[JSONObject]]:
    return [items[i : i + _PAGE] for i in range(0, len(items), _PAGE)]


async def fetch_pages(settings: GitSettings, kind: str) -> AsyncIterator[list[JSONObject]]:
    """Yield the items of ``kind`` in pages (of at most 500 items)."""
    repos = await discover(settings)
    if kind == REPOSITORY_KIND:
        async for items in _each(repos, repository_item):
            yield items
    elif kind in (BRANCH_KIND, CODEOWNER_KIND):
        ask = branch_items if kind == BRANCH_KIND else codeowner_items
        async for rounds in _each(repos, ask):
            for page in _pages([item for items in rounds for item in items]):
                yield page
    elif kind == CONTRIBUTOR_KIND:
        tally = ContributorTally()
        async for _ in _each(repos, tally.add_repository):
            pass
        for page in _pages(tally.items()):
            yield page
    else:
        raise ConfigError(f"the git integration has no kind {kind!r}")
