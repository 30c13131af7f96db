"""The kinds the git integration serves, in the order of the default mapping config."""

from __future__ import annotations

from typing import Final

__all__ = ["BRANCH_KIND", "CODEOWNER_KIND", "CONTRIBUTOR_KIND", "KINDS", "REPOSITORY_KIND"]

REPOSITORY_KIND: Final = "repository"
BRANCH_KIND: Final = "branch"
CONTRIBUTOR_KIND: Final = "contributor"
CODEOWNER_KIND: Final = "codeowner"

KINDS: Final[tuple[str, ...]] = (REPOSITORY_KIND, BRANCH_KIND, CONTRIBUTOR_KIND, CODEOWNER_KIND)
