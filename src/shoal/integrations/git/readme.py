"""README files: which one a repository has, and its title (pure functions).

The title is the first level-1 heading of a Markdown README (``# Title``, a ``Title`` line
underlined with ``===``, or an HTML ``<h1>``), else its first heading of any level; the first
over/underlined line of a reStructuredText README; the first non-empty line of a plain-text
one. Inline markup is removed (links keep their text, images and tags disappear).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["README_NAMES", "pick_readme", "readme_title"]

README_NAMES: Final = ("readme.md", "readme.markdown", "readme.rst", "readme.txt", "readme")
"""Recognised README names (case-insensitive), in order of preference."""
_MAX_TITLE: Final = 200

_ATX: Final = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_H1: Final = re.compile(r"^ {0,3}=+[ \t]*$")
_HTML_H1: Final = re.compile(r"<h1\b[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
_IMAGE: Final = re.compile(r"!\[[^\]]*\]\([^)]*\)|!\[[^\]]*\]\[[^\]]*\]")
_LINK: Final = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])")
_TAG: Final = re.compile(r"<[^>]+>")
_EMPHASIS: Final = re.compile(r"(\*\*|__|\*|`)")
_RST_ADORNMENT: Final = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}\s*$")


def pick_readme(root_files: Iterable[str]) -> str | None:
    """The README among ``root_files`` (names at the repository root), by preference."""
    by_lower = {name.lower(): name for name in sorted(root_files, reverse=True)}
    return next((by_lower[name] for name in README_NAMES if name in by_lower), None)


def _clean(text: str) -> str:
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _TAG.sub("", text)
    text = _EMPHASIS.sub("", text)
    return " ".join(text.split())[:_MAX_TITLE]


def _markdown_title(lines: list[str]) -> str | None:
    if lines and lines[0].strip() == "---":  # YAML front matter
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
        lines = lines[end + 1 :] if end is not None else lines
    first_any: str | None = None
    in_fence = False
    for index, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        candidates: list[tuple[int, str]] = []
        if match := _ATX.match(line):
            candidates.append((len(match.group(1)), match.group(2)))
        elif index + 1 < len(lines) and line.strip() and _SETEXT_H1.match(lines[index + 1]):
            candidates.append((1, line))
        candidates.extend((1, found) for found in _HTML_H1.findall(line))
        for level, raw in candidates:
            title = _clean(raw)
            if not title:
                continue
            if level == 1:
                return title
            first_any = first_any or title
    return first_any


def _rst_title(lines: list[str]) -> str | None:
    for index, line in enumerate(lines[:-1]):
        text = line.strip()
        if text and not _RST_ADORNMENT.match(line) and _RST_ADORNMENT.match(lines[index + 1]):
            return _clean(text)
    return None


def readme_title(name: str, text: str) -> str | None:
    """The title of README file ``name`` whose content is ``text``, or ``None``."""
    lines = text.splitlines()
    lower = name.lower()
    if lower.endswith((".md", ".markdown")):
        return _markdown_title(lines)
    if lower.endswith(".rst"):
        return _rst_title(lines)
    return next((_clean(line) for line in lines if _clean(line)), None)
