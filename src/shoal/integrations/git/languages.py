"""Languages by file extension: a small, deliberately boring table (not GitHub Linguist).

:func:`language_of` names the language of one path; :class:`LanguageCounter` counts the files
of a repository per language and picks the primary one among *programming* languages (data,
markup and prose formats are counted but never primary).
"""

from __future__ import annotations

from collections import Counter
from typing import Final

__all__ = ["LanguageCounter", "language_of"]

_BY_EXTENSION: Final[dict[str, str]] = {
    ".py": "Python", ".pyi": "Python", ".pyx": "Cython",
    ".js": "JavaScript", ".mjs": "JavaScript", ".cjs": "JavaScript", ".jsx": "JavaScript",
    ".ts": "TypeScript", ".tsx": "TypeScript", ".mts": "TypeScript", ".cts": "TypeScript",
    ".go": "Go", ".rs": "Rust", ".java": "Java", ".kt": "Kotlin", ".kts": "Kotlin",
    ".scala": "Scala", ".groovy": "Groovy", ".gradle": "Groovy", ".clj": "Clojure",
    ".c": "C", ".h": "C", ".cc": "C++", ".cpp": "C++", ".cxx": "C++", ".hpp": "C++",
    ".hh": "C++", ".hxx": "C++", ".m": "Objective-C", ".mm": "Objective-C++",
    ".cs": "C#", ".fs": "F#", ".vb": "Visual Basic", ".swift": "Swift", ".dart": "Dart",
    ".rb": "Ruby", ".php": "PHP", ".pl": "Perl", ".pm": "Perl", ".lua": "Lua", ".r": "R",
    ".jl": "Julia", ".ex": "Elixir", ".exs": "Elixir", ".erl": "Erlang", ".hs": "Haskell",
    ".ml": "OCaml", ".elm": "Elm", ".zig": "Zig", ".nim": "Nim", ".sol": "Solidity",
    ".sh": "Shell", ".bash": "Shell", ".zsh": "Shell", ".fish": "Shell", ".ps1": "PowerShell",
    ".sql": "SQL", ".tf": "HCL", ".hcl": "HCL", ".nix": "Nix", ".vue": "Vue",
    ".svelte": "Svelte", ".html": "HTML", ".htm": "HTML", ".css": "CSS", ".scss": "SCSS",
    ".sass": "Sass", ".less": "Less", ".proto": "Protocol Buffers", ".graphql": "GraphQL",
    ".md": "Markdown", ".markdown": "Markdown", ".rst": "reStructuredText", ".txt": "Text",
    ".json": "JSON", ".yaml": "YAML", ".yml": "YAML", ".toml": "TOML", ".ini": "INI",
    ".cfg": "INI", ".xml": "XML", ".csv": "CSV", ".ipynb": "Jupyter Notebook",
}  # fmt: skip
_BY_NAME: Final[dict[str, str]] = {
    "dockerfile": "Dockerfile", "containerfile": "Dockerfile", "makefile": "Makefile",
    "gnumakefile": "Makefile", "cmakelists.txt": "CMake", "jenkinsfile": "Groovy",
    "rakefile": "Ruby", "gemfile": "Ruby", "vagrantfile": "Ruby",
}  # fmt: skip
_NOT_PROGRAMMING: Final = frozenset(
    {"Markdown", "reStructuredText", "Text", "JSON", "YAML", "TOML", "INI", "XML", "CSV"}
)


def language_of(path: str) -> str | None:
    """The language of the file at ``path`` (``/``-separated), from its name or extension."""
    name = path.rpartition("/")[2].lower()
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.startswith("dockerfile."):
        return "Dockerfile"
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        return None
    return _BY_EXTENSION.get("." + extension)


class LanguageCounter:
    """Counts files per language, one path at a time (constant memory per language)."""

    def __init__(self) -> None:
        self.files = 0
        self._counts: Counter[str] = Counter()

    def add(self, path: str) -> None:
        self.files += 1
        language = language_of(path)
        if language is not None:
            self._counts[language] += 1

    @property
    def counts(self) -> dict[str, int]:
        """Files per recognised language, most files first (ties by name)."""
        return dict(sorted(self._counts.items(), key=lambda pair: (-pair[1], pair[0])))

    @property
    def primary(self) -> str | None:
        """The programming language with the most files, or ``None``."""
        return next((name for name in self.counts if name not in _NOT_PROGRAMMING), None)
