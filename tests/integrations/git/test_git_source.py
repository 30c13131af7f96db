"""The git integration against real repositories built by the tests with the git CLI."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shoal.errors import SourceError
from shoal.integrations.git import (
    BRANCH_KIND,
    CODEOWNER_KIND,
    CONTRIBUTOR_KIND,
    KINDS,
    REPOSITORY_KIND,
    GitError,
    GitSettings,
    create_integration,
    discover,
    load_default_blueprints,
    load_default_mapping,
    toplevel,
)
from shoal.integrations.git.command import git_each, git_output
from shoal.integrations.git.discovery import find_repositories
from shoal.integrations.git.repository import iso_time
from shoal.sync.mapping import compile_resource, parse_mapping_config
from tests.integrations.git.gitrepo import EPOCH, GRACE, LINUS, GitRepo, git_env, run_git

Items = dict[str, dict[str, Any]]
BIG_COMMITS = 20_000


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``src/`` with a working tree, a nested one, a bare mirror, a clone, an empty repository,
    and repositories the scan must not find (too deep, hidden, inside node_modules)."""
    src = tmp_path_factory.mktemp("git") / "src"
    shop = GitRepo.init(src / "shop")
    shop.commit({"README.md": "[![ci](x.svg)](y)\n# Shop\n", "app.py": "", "lib/util.py": ""})
    shop.commit({"web/index.ts": "", "web/style.css": "", "Dockerfile": ""}, author=GRACE)
    shop.commit(
        {".github/CODEOWNERS": "* @acme/shop\n/web/ @acme/frontend ada@example.com\n",
         "CODEOWNERS": "* @ignored\n"},
    )  # fmt: skip
    shop.git("remote", "add", "origin", "https://deploy:s3cret@git.example.com/acme/shop.git")
    shop.git("checkout", "-q", "-b", "feature/cart")
    shop.commit({"cart.py": ""}, "cart", author=LINUS)
    shop.git("checkout", "-q", "main")

    api = GitRepo.init(src / "team" / "api", branch="trunk")
    api.commit({".mailmap": "Grace Hopper <grace@example.com> <g@old.example>\n"}, author=GRACE)
    api.commit(
        {"main.go": "", "docs/CODEOWNERS": "*.go @acme/go\n"}, author=("G. H.", "g@old.example")
    )

    run_git(src, "clone", "-q", "--bare", str(src / "shop"), "mirror.git")
    run_git(src, "clone", "-q", "--branch", "feature/cart", str(src / "shop"), "clone")
    GitRepo.init(src / "empty")
    GitRepo.init(src / "a" / "b" / "c" / "too-deep").commit({"x.py": ""})
    GitRepo.init(src / ".hidden" / "repo").commit({"x.py": ""})
    GitRepo.init(src / "node_modules" / "dep").commit({"x.js": ""})
    return src


async def _items(settings: GitSettings, kind: str) -> Items:
    integration = create_integration(settings)
    pages = [page async for page in integration.fetch(kind)]
    return {item["id"]: item for page in pages for item in page}


def test_discovery_respects_depth_and_skips_hidden_and_dependencies(workspace: Path) -> None:
    found = find_repositories([workspace], depth=3)
    assert [(r.path.relative_to(workspace).as_posix(), r.bare) for r in found] == [
        ("clone", False),
        ("empty", False),
        ("mirror.git", True),
        ("shop", False),
        ("team/api", False),
    ]
    assert [r.path for r in find_repositories([workspace], depth=1)] == [
        workspace / name for name in ("clone", "empty", "mirror.git", "shop")
    ]
    assert [r.path for r in find_repositories([workspace / "shop"], depth=0)] == [
        workspace / "shop"
    ]
    assert find_repositories([workspace], depth=0) == []


def test_a_missing_root_is_a_source_error(workspace: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        find_repositories([workspace, tmp_path / "unmounted"], depth=1)


async def test_repositories(workspace: Path) -> None:
    items = await _items(GitSettings.of([workspace]), REPOSITORY_KIND)
    shop_id = (workspace / "shop").as_posix()
    assert sorted(items) == sorted(
        (workspace / name).as_posix()
        for name in ("clone", "empty", "mirror.git", "shop", "team/api")
    )
    assert items[shop_id] == {
        "id": shop_id,
        "name": "shop",
        "path": shop_id,
        "bare": False,
        "default_branch": "main",
        "head_branch": "main",
        "remotes": {"origin": "https://git.example.com/acme/shop.git"},  # no credentials
        "web_url": "https://git.example.com/acme/shop",
        "last_commit_at": iso_time(EPOCH + 4 * 3600),  # the tip of feature/cart, not of HEAD
        "file_count": 8,
        "languages": {
            "Python": 2,
            "CSS": 1,
            "Dockerfile": 1,
            "Markdown": 1,
            "TypeScript": 1,
        },
        "primary_language": "Python",
        "size_kb": items[shop_id]["size_kb"],
        "readme": "README.md",
        "readme_title": "Shop",
    }
    assert items[shop_id]["size_kb"] >= 0

    mirror = items[(workspace / "mirror.git").as_posix()]
    assert (mirror["name"], mirror["bare"], mirror["default_branch"]) == ("mirror", True, "main")
    assert (mirror["file_count"], mirror["readme_title"]) == (8, "Shop")  # read from HEAD

    clone = items[(workspace / "clone").as_posix()]
    assert (clone["default_branch"], clone["head_branch"]) == ("main", "feature/cart")
    assert clone["file_count"] == 9  # the checked-out branch has cart.py
    assert clone["remotes"] == {"origin": (workspace / "shop").as_posix()}
    assert clone["web_url"] is None

    empty = items[(workspace / "empty").as_posix()]
    assert (empty["default_branch"], empty["last_commit_at"], empty["file_count"]) == (
        "main",
        None,
        0,
    )
    assert (empty["readme"], empty["readme_title"], empty["primary_language"]) == (None, None, None)

    api = items[(workspace / "team" / "api").as_posix()]
    assert (api["name"], api["default_branch"], api["primary_language"]) == ("api", "trunk", "Go")


async def test_branches(workspace: Path) -> None:
    items = await _items(GitSettings.of([workspace / "shop"], depth=0), BRANCH_KIND)
    shop = (workspace / "shop").as_posix()
    assert sorted(items) == [f"{shop}:feature/cart", f"{shop}:main"]
    cart = items[f"{shop}:feature/cart"]
    assert cart == {
        "id": f"{shop}:feature/cart",
        "name": "feature/cart",
        "repository": shop,
        "repository_name": "shop",
        "sha": run_git(workspace / "shop", "rev-parse", "feature/cart"),
        "is_default": False,
        "is_head": False,
        "last_commit_at": iso_time(EPOCH + 4 * 3600),
        "last_commit_author": LINUS[0],
        "last_commit_author_email": LINUS[1],
        "last_commit_subject": "cart",
    }
    assert items[f"{shop}:main"]["is_default"] is items[f"{shop}:main"]["is_head"] is True


async def test_contributors_are_counted_per_repository(workspace: Path) -> None:
    items = await _items(GitSettings.of([workspace]), CONTRIBUTOR_KIND)
    assert sorted(items) == ["ada@example.com", "grace@example.com", "linus@example.org"]
    shop, clone, mirror, api = (
        (workspace / name).as_posix() for name in ("shop", "clone", "mirror.git", "team/api")
    )
    ada = items["ada@example.com"]
    # HEAD's history only: shop and the mirror are on main, the clone on feature/cart.
    assert ada["commits_by_repository"] == {clone: 2, mirror: 2, shop: 2}
    assert ada["commit_count"] == 6
    assert ada["repositories"] == sorted([clone, mirror, shop])
    assert (ada["first_commit_at"], ada["last_commit_at"]) == (
        iso_time(EPOCH + 3600),
        iso_time(EPOCH + 3 * 3600),
    )
    grace = items["grace@example.com"]  # .mailmap folds g@old.example into grace@example.com
    assert grace["name"] == GRACE[0]
    assert grace["commits_by_repository"] == {api: 2, clone: 1, mirror: 1, shop: 1}
    assert items["linus@example.org"]["commits_by_repository"] == {clone: 1}


async def test_codeowners(workspace: Path) -> None:
    items = await _items(GitSettings.of([workspace / "shop", workspace / "team"]), CODEOWNER_KIND)
    shop, api = (workspace / "shop").as_posix(), (workspace / "team" / "api").as_posix()
    by_pattern = {(item["repository"], item["pattern"]): item for item in items.values()}
    assert sorted(by_pattern) == [(shop, "*"), (shop, "/web/"), (api, "*.go")]  # .github/ first
    web = by_pattern[(shop, "/web/")]
    assert web == {
        "id": f"{shop}:codeowners:/web/",
        "pattern": "/web/",
        "owners": ["@acme/frontend", "ada@example.com"],
        "section": None,
        "file": ".github/CODEOWNERS",
        "line": 2,
        "repository": shop,
        "repository_name": "shop",
    }
    assert by_pattern[(api, "*.go")]["file"] == "docs/CODEOWNERS"


async def test_a_broken_repository_fails_the_kind(tmp_path: Path) -> None:
    GitRepo.init(tmp_path / "good").commit({"a.py": ""})
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / ".git").write_text("gitdir: /nonexistent/worktree\n")
    integration = create_integration(GitSettings.of([tmp_path], depth=1))
    with pytest.raises(GitError, match="broken"):
        _ = [page async for page in integration.fetch(REPOSITORY_KIND)]


async def test_an_unreadable_codeowners_file_fails_the_kind(tmp_path: Path) -> None:
    repo = GitRepo.init(tmp_path / "repo")
    repo.commit({"CODEOWNERS": "* @acme/team\n"})
    blob = repo.git("rev-parse", ":CODEOWNERS").strip()
    (tmp_path / "repo" / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # a lost object
    integration = create_integration(GitSettings.of([tmp_path], depth=1))
    with pytest.raises(GitError, match="cat-file"):  # not "no codeowners": they would be deleted
        _ = [page async for page in integration.fetch(CODEOWNER_KIND)]


def test_a_directory_that_fails_to_list_fails_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    GitRepo.init(tmp_path / "a" / "repo").commit({"x.py": ""})
    GitRepo.init(tmp_path / "b" / "repo").commit({"x.py": ""})
    scandir = os.scandir

    def failing(path: Any) -> Any:
        if Path(path).name == "b":
            raise OSError(errno.EIO, "Input/output error", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", failing)
    with pytest.raises(SourceError, match=r"cannot list .*Input/output error"):
        find_repositories([tmp_path], depth=2)

    def refused(path: Any) -> Any:
        if Path(path).name == "b":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refused)  # not ours to read: skipped, as it always is
    assert [found.path.parent.name for found in find_repositories([tmp_path], depth=2)] == ["a"]


async def test_handlers_discover_afresh_each_time(tmp_path: Path) -> None:
    settings = GitSettings.of([tmp_path])
    assert await discover(settings) == []
    GitRepo.init(tmp_path / "new").commit({"a.py": ""})
    assert [repo.name for repo in await discover(settings)] == ["new"]


async def test_toplevel(workspace: Path, tmp_path: Path) -> None:
    assert await toplevel(workspace / "shop" / "lib") == workspace / "shop"
    assert await toplevel(tmp_path) is None


def _children() -> set[int]:
    tasks = Path(f"/proc/{os.getpid()}/task")
    return {int(pid) for task in tasks.iterdir() for pid in (task / "children").read_text().split()}


@pytest.fixture
def big_repo(tmp_path: Path) -> Path:
    """20,000 commits by 7 authors, written with ``git fast-import`` in well under a second."""
    repo = GitRepo.init(tmp_path / "big")
    stream = "".join(
        f"commit refs/heads/main\nauthor A{i % 7} <a{i % 7}@x.org> {EPOCH + i} +0000\n"
        f"committer A <a@x.org> {EPOCH + i} +0000\ndata 1\nx\n"
        for i in range(BIG_COMMITS)
    )
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=repo.path, input=stream, text=True, check=True,
        env=git_env(),
    )  # fmt: skip
    return repo.path


@pytest.mark.skipif(
    next(Path("/proc/self/task").glob("*/children"), None) is None,
    reason="needs Linux /proc/<pid>/task/<tid>/children",
)
async def test_log_is_streamed_and_a_stop_kills_git(big_repo: Path) -> None:
    before = _children()
    seen: list[str] = []

    def stop_after_ten(line: str) -> None:
        seen.append(line)
        if len(seen) == 10:
            raise LookupError("enough")

    with pytest.raises(LookupError):
        await git_each(big_repo, "log", "--format=%H", on_record=stop_after_ten)
    assert len(seen) == 10
    assert _children() == before  # git was killed and reaped, not left writing to a full pipe

    items = await _items(GitSettings.of([big_repo], depth=0), CONTRIBUTOR_KIND)
    assert sum(item["commit_count"] for item in items.values()) == BIG_COMMITS
    assert len(items) == 7


@pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")
async def test_cancelling_kills_git_and_the_helpers_it_started(tmp_path: Path) -> None:
    """An aborted resync ends at once, even when git runs a helper that holds its output."""
    repo = GitRepo.init(tmp_path / "r")
    started = asyncio.Event()
    nap = ("-c", "alias.nap=!echo started; sleep 30", "nap")  # git -> sh -> sleep
    task = asyncio.create_task(git_each(repo.path, *nap, on_record=lambda _: started.set()))
    await asyncio.wait_for(started.wait(), 10)
    before = asyncio.get_running_loop().time()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert asyncio.get_running_loop().time() - before < 5


async def test_output_limit_reads_only_the_top(tmp_path: Path) -> None:
    repo = GitRepo.init(tmp_path / "r")
    repo.commit({"README.md": "# Big\n" + "x" * 5_000_000})
    code, text = await git_output(repo.path, "cat-file", "blob", ":README.md", limit=100)
    assert (code, len(text)) == (0, 100)
    with pytest.raises(GitError, match="cat-file"):
        await git_output(repo.path, "cat-file", "blob", ":missing.md")
    shutil.rmtree(repo.path / ".git")
    with pytest.raises(GitError, match="not a git repository"):
        await git_output(repo.path, "rev-parse", "HEAD")


async def test_default_mapping_maps_every_item_onto_the_default_blueprints(workspace: Path) -> None:
    blueprints = {b["identifier"]: b for b in load_default_blueprints()}
    config = parse_mapping_config(load_default_mapping())
    assert [resource.kind for resource in config.resources] == list(KINDS)
    for resource in config.resources:
        items = list((await _items(GitSettings.of([workspace]), resource.kind)).values())
        mapped = compile_resource(resource).map_batch(items)
        assert not mapped.errors, mapped.errors
        assert len(mapped.entities) == len(items) > 0
        for entity in mapped.entities:
            blueprint = blueprints[entity["blueprint"]]
            assert set(entity["properties"]) <= set(blueprint["schema"]["properties"])
            assert set(entity["relations"]) == set(blueprint["relations"])
            for name, relation in blueprint["relations"].items():
                assert relation["target"] in blueprints
                assert isinstance(entity["relations"][name], list) is relation["many"]
