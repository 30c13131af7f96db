"""The git integration's tests run git without the user's or the system's git configuration."""

from __future__ import annotations

import pytest

from tests.integrations.git.gitrepo import git_env


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [key for key in git_env() if key.startswith("GIT_")]:
        monkeypatch.setenv(key, git_env()[key])
