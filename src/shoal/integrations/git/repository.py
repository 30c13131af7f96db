"""What one repository says about itself, asked through the git CLI (see :mod:`.command`).

Working trees are read from their index (what ``git ls-files`` lists, ``:path`` contents),
bare repositories from ``HEAD``. The potentially huge outputs (file lists, commit logs) are
handed to a callback record by record and never held; the rest (remotes, branches) is small,
and README and CODEOWNERS reads are bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from shoal.integrations.git.command import git_each, git_output
from shoal.integrations.git.discovery import FoundRepository
from shoal.integrations.git.naming import repository_id

__all__ = ["Author", "BranchRef", "Repository", "iso_time"]

_MAX_FILE_BYTES: Final = 3 * 1024 * 1024
_NOT_FOUND: Final = (0, 1)  # `-q` lookups exit 1 when the name does not exist
_BRANCH_FORMAT: Final = "%00".join(
    (
        "%(refname)", "%(objectname)", "%(committerdate:unix)", "%(authorname)",
        "%(authoremail)", "%(contents:subject)",
    )
)  # fmt: skip


def iso_time(epoch: int | None) -> str | None:
    """Epoch seconds as an ISO-8601 UTC timestamp (``2024-05-01T12:00:00+00:00``)."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class BranchRef:
    """A local branch and its tip commit."""

    name: str
    sha: str
    committed_at: int | None
    author: str
    author_email: str
    subject: str


@dataclass(frozen=True, slots=True)
class Author:
    """The author of one commit (``.mailmap`` applied)."""

    email: str
    name: str
    authored_at: int | None


@dataclass(frozen=True, slots=True)
class Repository:
    """A repository found on disk, with its catalog identifier and display name."""

    path: Path
    bare: bool
    id: str
    name: str

    @classmethod
    def of(cls, found: FoundRepository) -> Repository:
        name = found.path.name.removesuffix(".git") if found.bare else found.path.name
        return cls(found.path, found.bare, repository_id(found.path), name or found.path.as_posix())

    def _spec(self, path: str) -> str:
        """The object name of tracked file ``path``: from the index, or HEAD when bare."""
        return f"HEAD:{path}" if self.bare else f":{path}"

    async def head_commit(self) -> str | None:
        """The commit HEAD points at, or ``None`` in a repository without commits."""
        code, out = await git_output(
            self.path, "rev-parse", "-q", "--verify", "HEAD^{commit}", ok=_NOT_FOUND
        )
        return out.strip() if code == 0 else None

    async def head_branch(self) -> str | None:
        """The branch HEAD is on (unborn or not), or ``None`` when HEAD is detached."""
        code, out = await git_output(self.path, "symbolic-ref", "-q", "HEAD", ok=_NOT_FOUND)
        return out.strip().removeprefix("refs/heads/") if code == 0 else None

    async def default_branch(self) -> str | None:
        """``origin``'s default branch when known (``origin/HEAD``), else HEAD's branch."""
        code, out = await git_output(
            self.path, "symbolic-ref", "-q", "refs/remotes/origin/HEAD", ok=_NOT_FOUND
        )
        if code == 0 and out.strip():
            return out.strip().removeprefix("refs/remotes/origin/")
        return await self.head_branch()

    async def remotes(self) -> dict[str, str]:
        """Remote name -> fetch URL, as configured (credentials included; see :mod:`.remotes`)."""
        lines: list[str] = []
        pattern = r"^remote\..*\.url$"
        await git_each(
            self.path, "config", "--get-regexp", pattern, on_record=lines.append, ok=_NOT_FOUND
        )
        remotes: dict[str, str] = {}
        for line in lines:
            key, _, url = line.partition(" ")
            remotes.setdefault(key.removeprefix("remote.").removesuffix(".url"), url)
        return remotes

    async def branches(self) -> list[BranchRef]:
        """The local branches, by name."""
        lines: list[str] = []
        args = ("for-each-ref", "--sort=refname", f"--format={_BRANCH_FORMAT}", "refs/heads")
        await git_each(self.path, *args, on_record=lines.append)
        return [_branch(line) for line in lines]

    async def head_time(self) -> int | None:
        """The committer time of HEAD's commit (epoch seconds), or ``None`` without commits."""
        if await self.head_commit() is None:
            return None
        _, out = await git_output(self.path, "show", "-s", "--format=%ct", "HEAD")
        return _int(out.strip())

    async def tracked_files(self, visit: Callable[[str], object]) -> None:
        """Call ``visit`` with each tracked file, ``/``-separated: ``git ls-files`` (bare: the
        files of HEAD)."""
        if self.bare:
            if await self.head_commit() is None:
                return
            args: tuple[str, ...] = ("ls-tree", "-r", "-z", "--name-only", "HEAD")
        else:
            args = ("ls-files", "-z")
        await git_each(self.path, *args, on_record=visit, separator=b"\0")

    async def existing(self, *paths: str) -> set[str]:
        """Which of ``paths`` are tracked files."""
        if self.bare:
            if await self.head_commit() is None:
                return set()
            args: tuple[str, ...] = ("ls-tree", "-r", "-z", "--name-only", "HEAD", "--", *paths)
        else:
            args = ("ls-files", "-z", "--", *paths)
        found: set[str] = set()
        await git_each(self.path, *args, on_record=found.add, separator=b"\0")
        return found & set(paths)

    async def read(self, path: str, limit: int = _MAX_FILE_BYTES) -> str:
        """The first ``limit`` bytes of tracked file ``path``. Raises :class:`GitError` when
        git cannot read its blob (a missing or corrupt object, a partial clone offline): an
        unreadable file fails its kind, it does not look like an absent one."""
        _, out = await git_output(self.path, "cat-file", "blob", self._spec(path), limit=limit)
        return out

    async def size_kb(self) -> int:
        """The disk size of the object database in KiB (loose + packed objects)."""
        _, out = await git_output(self.path, "count-objects", "-v")
        sizes = dict(line.partition(": ")[::2] for line in out.splitlines())
        return sum(_int(sizes.get(key, "0")) or 0 for key in ("size", "size-pack"))

    async def authors(self, visit: Callable[[Author], object]) -> None:
        """Call ``visit`` with the author of every commit reachable from HEAD, newest first
        (no call in a repository without commits)."""
        if await self.head_commit() is None:
            return

        def parse(line: str) -> None:
            email, name, authored = [*line.split("\0"), "", ""][:3]
            visit(Author(email, name, _int(authored)))

        await git_each(self.path, "log", "--format=%aE%x00%aN%x00%at", "HEAD", on_record=parse)


def _branch(line: str) -> BranchRef:
    ref, sha, committed, author, email, subject = [*line.split("\0"), *[""] * 6][:6]
    return BranchRef(
        name=ref.removeprefix("refs/heads/"), sha=sha, committed_at=_int(committed),
        author=author, author_email=email.strip("<>"), subject=subject,
    )  # fmt: skip
