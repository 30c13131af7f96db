"""Real git repositories for the git integration's tests (not collected: no ``test_`` prefix).

Commands run with the git CLI, isolated from the user's and system's git configuration, with
fixed author/committer identities and dates so every test builds the same history.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ADA = ("Ada Lovelace", "ada@example.com")
GRACE = ("Grace Hopper", "grace@example.com")
LINUS = ("Linus", "linus@example.org")
EPOCH = 1_700_000_000  # 2023-11-14T22:13:20Z


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    env.update(extra or {})
    return env


def run_git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(env), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


@dataclass
class GitRepo:
    """A working tree (or bare repository) at ``path``, built commit by commit."""

    path: Path
    clock: int = EPOCH

    @classmethod
    def init(cls, path: Path, *, branch: str = "main", bare: bool = False) -> GitRepo:
        path.mkdir(parents=True, exist_ok=True)
        run_git(path, "init", "-q", f"--initial-branch={branch}", *(["--bare"] if bare else []))
        return cls(path)

    def git(self, *args: str) -> str:
        return run_git(self.path, *args)

    def commit(
        self,
        files: Mapping[str, str | None],
        message: str = "change",
        author: tuple[str, str] = ADA,
    ) -> str:
        """Write (or, for ``None``, delete) ``files``, commit them as ``author``, return the sha."""
        for name, content in files.items():
            target = self.path / name
            if content is None:
                self.git("rm", "-q", name)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            self.git("add", name)
        self.clock += 3600
        when = f"{self.clock} +0000"
        env = {
            "GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1], "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_NAME": author[0], "GIT_COMMITTER_EMAIL": author[1],
            "GIT_COMMITTER_DATE": when,
        }  # fmt: skip
        run_git(self.path, "commit", "-q", "--allow-empty", "-m", message, env=env)
        return self.git("rev-parse", "HEAD")
