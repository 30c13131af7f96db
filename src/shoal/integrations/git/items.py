"""The raw items of each git kind, one repository at a time (see docs/integrations/git.md).

Every function asks one :class:`~.repository.Repository` and returns plain JSON-ready dicts;
:class:`ContributorTally` folds commit authors of many repositories into contributors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from shoal.integrations.git.codeowners import CODEOWNERS_PATHS, parse_codeowners
from shoal.integrations.git.languages import LanguageCounter
from shoal.integrations.git.naming import branch_id, codeowner_id, contributor_id
from shoal.integrations.git.readme import README_NAMES, pick_readme, readme_title
from shoal.integrations.git.remotes import public_url, web_url
from shoal.integrations.git.repository import Author, Repository, iso_time
from shoal.types import JSONObject

__all__ = ["ContributorTally", "branch_items", "codeowner_items", "repository_item"]

_README_BYTES = 64 * 1024


async def repository_item(repo: Repository) -> JSONObject:
    """The ``repository`` item of ``repo``."""
    languages = LanguageCounter()
    readmes: list[str] = []

    def visit(path: str) -> None:
        languages.add(path)
        if "/" not in path and path.lower() in README_NAMES:
            readmes.append(path)

    await repo.tracked_files(visit)
    readme = pick_readme(readmes)
    text = await repo.read(readme, _README_BYTES) if readme else None
    remotes = {name: public_url(url) for name, url in (await repo.remotes()).items()}
    origin = remotes.get("origin") or next(iter(remotes.values()), None)
    tips = [b.committed_at for b in await repo.branches() if b.committed_at is not None]
    last_commit = max(tips) if tips else await repo.head_time()
    return {
        "id": repo.id,
        "name": repo.name,
        "path": repo.path.as_posix(),
        "bare": repo.bare,
        "default_branch": await repo.default_branch(),
        "head_branch": await repo.head_branch(),
        "remotes": remotes,
        "web_url": web_url(origin) if origin else None,
        "last_commit_at": iso_time(last_commit),
        "file_count": languages.files,
        "languages": languages.counts,
        "primary_language": languages.primary,
        "size_kb": await repo.size_kb(),
        "readme": readme,
        "readme_title": readme_title(readme, text) if readme and text is not None else None,
    }


async def branch_items(repo: Repository) -> list[JSONObject]:
    """The ``branch`` items of ``repo``: its local branches."""
    default = await repo.default_branch()
    head = await repo.head_branch()
    return [
        {
            "id": branch_id(repo.id, branch.name),
            "name": branch.name,
            "repository": repo.id,
            "repository_name": repo.name,
            "sha": branch.sha,
            "is_default": branch.name == default,
            "is_head": branch.name == head,
            "last_commit_at": iso_time(branch.committed_at),
            "last_commit_author": branch.author,
            "last_commit_author_email": branch.author_email,
            "last_commit_subject": branch.subject,
        }
        for branch in await repo.branches()
    ]


async def codeowner_items(repo: Repository) -> list[JSONObject]:
    """The ``codeowner`` items of ``repo``: the rules of its CODEOWNERS file, if any."""
    present = await repo.existing(*CODEOWNERS_PATHS)
    path = next((candidate for candidate in CODEOWNERS_PATHS if candidate in present), None)
    text = await repo.read(path) if path else None
    if path is None or text is None:
        return []
    return [
        {
            "id": codeowner_id(repo.id, rule.section, rule.pattern),
            "pattern": rule.pattern,
            "owners": list(rule.owners),
            "section": rule.section,
            "file": path,
            "line": rule.line,
            "repository": repo.id,
            "repository_name": repo.name,
        }
        for rule in parse_codeowners(text)
    ]


@dataclass(slots=True)
class _Contributor:
    name: str
    email: str
    commits: dict[str, int] = field(default_factory=dict)
    first: int | None = None
    last: int | None = None


@dataclass(slots=True)
class ContributorTally:
    """Commit authors of many repositories, folded into one record per contributor.

    Authors are matched by lower-cased e-mail (by name when the e-mail is empty); the name
    kept is the one of the newest commit seen. Memory grows with contributors, not commits.
    """

    _by_id: dict[str, _Contributor] = field(default_factory=dict)

    async def add_repository(self, repo: Repository) -> None:
        await repo.authors(functools.partial(self.add, repo.id))

    def add(self, repository: str, author: Author) -> None:
        key = contributor_id(author.email, author.name)
        entry = self._by_id.get(key)
        if entry is None:
            entry = self._by_id[key] = _Contributor(author.name, author.email.strip().lower())
        entry.commits[repository] = entry.commits.get(repository, 0) + 1
        when = author.authored_at
        if when is not None:
            if entry.last is not None and when > entry.last:
                entry.name = author.name
            entry.first = when if entry.first is None else min(entry.first, when)
            entry.last = when if entry.last is None else max(entry.last, when)

    def items(self) -> list[JSONObject]:
        """The ``contributor`` items, by identifier."""
        return [
            {
                "id": key,
                "name": entry.name,
                "email": entry.email or None,
                "commit_count": sum(entry.commits.values()),
                "commits_by_repository": dict(sorted(entry.commits.items())),
                "repositories": sorted(entry.commits),
                "first_commit_at": iso_time(entry.first),
                "last_commit_at": iso_time(entry.last),
            }
            for key, entry in sorted(self._by_id.items())
        ]
