"""Remote URLs: credentials removed, and the web page a remote probably has (pure functions)."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = ["public_url", "web_url"]

_SCP_LIKE: Final = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>(?!//)[^\s]+)$")


def public_url(url: str) -> str:
    """``url`` without a user name or password (``https://token@host/x`` -> ``https://host/x``)."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=host))
    return url


def web_url(url: str) -> str | None:
    """The https page of a remote on a typical forge (GitHub, GitLab, Gitea, Bitbucket ...).

    ``git@github.com:org/repo.git``, ``ssh://git@host/org/repo`` and
    ``https://host/org/repo.git`` all give ``https://<host>/org/repo`` (an ``http`` remote
    keeps its scheme and port; ssh ports are dropped). Local paths and
    ``file://`` remotes have none. A best guess: the forge may serve the page elsewhere.
    """
    host: str | None
    path: str
    scheme = "https"
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        scheme, host, path = parts.scheme, parts.netloc.rpartition("@")[2], parts.path
    elif parts.scheme in ("ssh", "git", "git+ssh", "ssh+git"):
        host, path = parts.hostname, parts.path
    elif not parts.scheme and (match := _SCP_LIKE.match(url)):
        host, path = match.group("host"), match.group("path")
    else:
        return None
    path = path.strip("/").removesuffix(".git")
    if not host or not path:
        return None
    return f"{scheme}://{host}/{path}"
