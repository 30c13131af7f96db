"""Entity identifiers of the git kinds: readable, unique, stable, and always valid.

* ``repository``: its absolute path (``/src/shoal``);
* ``branch``: ``<repository id>:<branch>`` (``/src/shoal:feature/x``);
* ``contributor``: the lower-cased author e-mail, else the name (``ada@example.com``);
* ``codeowner``: ``<repository id>:codeowners:[<section>:]<pattern>``
  (``/src/shoal:codeowners:/docs/``).

git forbids ``:`` in branch names, so a branch identifier splits unambiguously at its last
``:``. Text outside the catalog's identifier alphabet (``A-Z a-z 0-9 @ _ . : / = + -``,
inner spaces) is replaced by ``_`` and a short hash of the original text is appended, so two
different sources never share an identifier (``*.py`` becomes ``_.py-1f0e3dad``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Final

__all__ = ["branch_id", "codeowner_id", "contributor_id", "repository_id", "safe_identifier"]

_VALID: Final = re.compile(
    r"[A-Za-z0-9@_.:/=+-](?:[A-Za-z0-9@_.:/=+ -]{0,899}[A-Za-z0-9@_.:/=+-])?"
)
_INVALID_CHARACTER: Final = re.compile(r"[^A-Za-z0-9@_.:/=+ -]")


def safe_identifier(text: str) -> str:
    """``text`` when it is a valid identifier, else a valid one derived from it (see above)."""
    if _VALID.fullmatch(text):
        return text
    cleaned = _INVALID_CHARACTER.sub("_", text).strip()[:900]
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else digest


def repository_id(path: Path) -> str:
    return safe_identifier(path.as_posix())


def branch_id(repository: str, branch: str) -> str:
    return safe_identifier(f"{repository}:{branch}")


def contributor_id(email: str, name: str) -> str:
    return safe_identifier(email.strip().lower() or name.strip())


def codeowner_id(repository: str, section: str | None, pattern: str) -> str:
    scope = f"{section}:" if section else ""
    return safe_identifier(f"{repository}:codeowners:{scope}{pattern}")
