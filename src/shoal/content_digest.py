"""The content digest of an entity body: how a catalog and a client agree on "the same write".

A Shoal catalog keeps, on each entity row, a digest of the write that produced it (the body as
sent plus what else decides the outcome: blueprint, merge flag, datasource). Writing the same
body again cannot change the row, so the catalog recognises it without reading the row, and a
client can ask about bodies by digest without sending them (``POST
/v1/blueprints/{bp}/entities/unchanged``). Both sides compute the body part here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["body_digest", "json_digest", "may_repeat", "row_digest", "row_digester"]

_SIZE = 16


def may_repeat(body: Any) -> bool:
    """Whether writing ``body`` again surely repeats its earlier outcome: a string identifier
    and no search query (in ``team`` or a relation), whose answer may have changed."""
    if not isinstance(body, dict) or not isinstance(body.get("identifier"), str):
        return False
    if isinstance(body.get("team"), dict):
        return False
    relations = body.get("relations")
    return not (isinstance(relations, dict) and any(type(v) is dict for v in relations.values()))


def body_digest(body: Any) -> str | None:
    """Hex digest of ``body`` as compact JSON (orjson: the bytes Shoal's client sends, and what
    the catalog re-serialises from them); None if it is not JSON."""
    try:
        text = orjson.dumps(body)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return json_digest(text)


def json_digest(text: bytes) -> str:
    """:func:`body_digest` of the body whose orjson serialisation is ``text``."""
    return hashlib.blake2b(text, digest_size=_SIZE).hexdigest()


def row_digest(key: bytes, digest: str) -> str:
    """The digest a row keeps: ``digest`` of its body under the write ``key`` (see module)."""
    return row_digester(key)(digest)


def row_digester(key: bytes) -> Callable[[str], str]:
    """:func:`row_digest` under one write ``key``, for a batch: the key (the blueprint's
    schema, often kilobytes) is hashed once, not once per entity. Same digests."""
    prefix = hashlib.blake2b(key, digest_size=_SIZE)

    def digest_of(digest: str) -> str:
        hashed = prefix.copy()
        hashed.update(digest.encode())
        return hashed.hexdigest()

    return digest_of
