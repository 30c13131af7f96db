"""The pure parts of the git integration: settings, names, languages, README, CODEOWNERS."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from shoal.catalog.blueprints import IDENTIFIER_PATTERN
from shoal.errors import ConfigError
from shoal.integrations.git import GitSettings
from shoal.integrations.git.codeowners import CodeownersRule, parse_codeowners
from shoal.integrations.git.languages import LanguageCounter, language_of
from shoal.integrations.git.naming import branch_id, codeowner_id, safe_identifier
from shoal.integrations.git.readme import pick_readme, readme_title
from shoal.integrations.git.remotes import public_url, web_url


def test_settings_from_env() -> None:
    env = {"SHOAL_GIT_PATHS": f"/srv/git{os.pathsep} ~/src {os.pathsep}", "SHOAL_GIT_DEPTH": "1"}
    settings = GitSettings.from_env(env)
    assert settings.paths == (Path("/srv/git"), Path("~/src").expanduser())
    assert settings.depth == 1
    assert GitSettings.from_env({"SHOAL_GIT_PATHS": "/x"}).depth == 3


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SHOAL_GIT_PATHS is not set"),
        ({"SHOAL_GIT_PATHS": os.pathsep}, "SHOAL_GIT_PATHS is not set"),
        ({"SHOAL_GIT_PATHS": "/x", "SHOAL_GIT_DEPTH": "deep"}, "expected an integer"),
        ({"SHOAL_GIT_PATHS": "/x", "SHOAL_GIT_DEPTH": "-1"}, "depth must be an integer from 0"),
        ({"SHOAL_GIT_PATHS": "/x", "SHOAL_GIT_PATH": "/y"}, "unknown git settings"),
    ],
)
def test_bad_settings_are_config_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GitSettings.from_env(env)


@pytest.mark.parametrize(
    "text", ["/src/shoal", "*.py", "docs/**/*.md", "a b", " lead", "", "ü", "x" * 2000, "/a:b[x]"]
)
def test_safe_identifiers_are_valid_and_keep_valid_text(text: str) -> None:
    identifier = safe_identifier(text)
    assert IDENTIFIER_PATTERN.match(identifier)
    if re.fullmatch(r"[A-Za-z0-9@_.:/=+-]+", text) and len(text) < 900:
        assert identifier == text


def test_safe_identifiers_keep_different_texts_apart() -> None:
    assert safe_identifier("a*b") != safe_identifier("a?b")
    assert branch_id("/src/x", "feature/one") == "/src/x:feature/one"
    assert codeowner_id("/src/x", None, "/docs/") == "/src/x:codeowners:/docs/"
    assert codeowner_id("/src/x", "Docs", "*.md") != codeowner_id("/src/x", None, "*.md")


def test_languages_by_extension_and_name() -> None:
    assert language_of("src/app.py") == "Python"
    assert language_of("web/App.TSX") == "TypeScript"
    assert language_of("Dockerfile") == language_of("deploy/Dockerfile.prod") == "Dockerfile"
    assert language_of("Makefile") == "Makefile"
    assert language_of(".gitignore") is None
    assert language_of("LICENSE") is None
    counter = LanguageCounter()
    for path in ["a.py", "b.py", "README.md", "c.md", "d.md", "e.go", "LICENSE"]:
        counter.add(path)
    assert counter.files == 7
    assert counter.counts == {"Markdown": 3, "Python": 2, "Go": 1}
    assert counter.primary == "Python"  # Markdown is counted, never primary


def test_readme_choice_and_titles() -> None:
    assert pick_readme(["readme.txt", "README.md", "Readme.rst"]) == "README.md"
    assert pick_readme(["main.py"]) is None
    markdown = "---\ntitle: x\n---\n[![ci](b.svg)](ci)\n## Intro\n# The **Shoal** [catalog](u)\n"
    assert readme_title("README.md", markdown) == "The Shoal catalog"
    assert readme_title("README.md", "```\n# not a title\n```\nShoal\n=====\n") == "Shoal"
    assert readme_title("README.md", '<h1 align="center">Logo <b>Shoal</b></h1>') == "Logo Shoal"
    assert readme_title("README.md", "text\n### Only a third-level heading ###\n") == (
        "Only a third-level heading"
    )
    assert readme_title("README.md", "no headings at all") is None
    assert readme_title("README.rst", "=====\nShoal\n=====\n\nBody\n----\n") == "Shoal"
    assert readme_title("README", "\n\n  Shoal catalog  \nmore") == "Shoal catalog"


def test_codeowners_rules() -> None:
    text = (
        "# comment\n"
        "*       @org/everyone  # trailing comment\n"
        "/docs/  @ada grace@example.com\n"
        "\n"
        "app/\\#private/ @ada\n"
        "*.lock\n"
        "/docs/  @org/writers\n"
        "[Backend][2] @org/backend\n"
        "/api/\n"
        "^[Optional]\n"
        "*.md @ada\n"
    )
    assert parse_codeowners(text) == [
        CodeownersRule("*", ("@org/everyone",), 2),
        CodeownersRule("app/#private/", ("@ada",), 5),
        CodeownersRule("*.lock", (), 6),
        CodeownersRule("/docs/", ("@org/writers",), 7),  # the later rule wins
        CodeownersRule("/api/", ("@org/backend",), 9, "Backend"),
        CodeownersRule("*.md", ("@ada",), 11, "Optional"),
    ]


@pytest.mark.parametrize(
    ("remote", "page"),
    [
        ("git@github.com:acme/shop.git", "https://github.com/acme/shop"),
        ("ssh://git@gitlab.example.com:2222/acme/shop.git", "https://gitlab.example.com/acme/shop"),
        ("https://token@github.com/acme/shop.git", "https://github.com/acme/shop"),
        ("http://git.local:3000/acme/shop/", "http://git.local:3000/acme/shop"),
        ("/srv/git/shop.git", None),
        ("file:///srv/git/shop.git", None),
    ],
)
def test_web_urls_of_remotes(remote: str, page: str | None) -> None:
    assert web_url(remote) == page


def test_credentials_are_removed_from_remote_urls() -> None:
    assert public_url("https://user:s3cret@github.com/a/b.git") == "https://github.com/a/b.git"
    assert public_url("git@github.com:a/b.git") == "git@github.com:a/b.git"
