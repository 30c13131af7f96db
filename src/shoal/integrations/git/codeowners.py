"""CODEOWNERS files: where a repository keeps one, and its rules (pure functions).

GitHub reads the first of ``.github/CODEOWNERS``, ``CODEOWNERS`` and ``docs/CODEOWNERS``;
so does this integration (:data:`CODEOWNERS_PATHS`). A rule is a pattern followed by zero or
more owners (``@user``, ``@org/team``, e-mail addresses). Blank lines and ``#`` comments are
skipped (``\\#`` is a literal ``#``); GitLab section headers (``[Section]``, ``^[Optional]``,
``[Section][2] @default-owner``) name the section of the rules below them, and a rule without
owners in a section with default owners gets those. When the same
pattern appears twice in one section the later rule wins, as it does on GitHub and GitLab.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["CODEOWNERS_PATHS", "CodeownersRule", "parse_codeowners"]

CODEOWNERS_PATHS: Final = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
_TOKEN: Final = re.compile(r"(?:\\.|[^\s\\])+")
_COMMENT: Final = re.compile(r"(?:^|(?<=\s))#.*$")
_SECTION: Final = re.compile(r"^\^?\[([^\]]+)\](?:\[\d+\])?(.*)$")


@dataclass(frozen=True, slots=True)
class CodeownersRule:
    """One rule: ``pattern`` owned by ``owners``, at 1-based ``line`` of the file."""

    pattern: str
    owners: tuple[str, ...]
    line: int
    section: str | None = None


def _unescape(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token)


def parse_codeowners(text: str) -> list[CodeownersRule]:
    """The effective rules of a CODEOWNERS file, in file order of their last occurrence."""
    rules: dict[tuple[str | None, str], CodeownersRule] = {}
    section: str | None = None
    defaults: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        if header := _SECTION.match(line):
            section = header.group(1).strip()
            defaults = tuple(_unescape(token) for token in _TOKEN.findall(header.group(2)))
            continue
        tokens = [_unescape(token) for token in _TOKEN.findall(line)]
        pattern, owners = tokens[0], tuple(tokens[1:]) or defaults
        rules.pop((section, pattern), None)
        rules[(section, pattern)] = CodeownersRule(pattern, owners, number, section)
    return list(rules.values())
