"""Cutting an entity list into bulk-upsert batches that respect count and byte limits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from shoal.types import JSONObject

__all__ = ["EntityBatch", "bulk_body_size", "split_batches"]

_PREFIX = b'{"entities":['
_SUFFIX = b"]}"


@dataclass(frozen=True, slots=True)
class EntityBatch:
    """Consecutive entities of one upsert call, serialised once.

    ``indices[i]`` is the position in the caller's input list of the entity whose JSON is
    ``parts[i]``; servers answer with positions inside the batch, so this maps them back.
    """

    indices: tuple[int, ...]
    parts: tuple[bytes, ...]
    entities: tuple[JSONObject, ...]

    def __len__(self) -> int:
        return len(self.indices)

    def body(self) -> bytes:
        """The exact bulk request body ``{"entities":[...]}``."""
        return _PREFIX + b",".join(self.parts) + _SUFFIX

    def halves(self) -> tuple[EntityBatch, EntityBatch]:
        """Split into two non-empty batches (the batch must hold at least two entities)."""
        if len(self) < 2:
            message = "cannot halve a batch of fewer than two entities"
            raise ValueError(message)
        middle = len(self) // 2
        return (
            EntityBatch(self.indices[:middle], self.parts[:middle], self.entities[:middle]),
            EntityBatch(self.indices[middle:], self.parts[middle:], self.entities[middle:]),
        )


def bulk_body_size(part_sizes: Sequence[int]) -> int:
    """Byte size of a bulk body holding entities whose JSON sizes are ``part_sizes``."""
    commas = max(len(part_sizes) - 1, 0)
    return len(_PREFIX) + sum(part_sizes) + commas + len(_SUFFIX)


def split_batches(
    entities: Sequence[JSONObject],
    *,
    max_entities: int,
    max_bytes: int,
    serialised: Sequence[bytes] | None = None,
) -> list[EntityBatch]:
    """Cut ``entities`` into consecutive batches, keeping input order.

    Every batch holds at most ``max_entities`` entities and its :meth:`EntityBatch.body` is at most
    ``max_bytes`` long, except a batch made of one entity that is bigger than ``max_bytes`` on its
    own: that one is sent alone and the server decides (a 413 then fails just that entity).
    Entities are serialised with orjson, the same bytes that go on the wire, unless
    ``serialised`` already holds them (``serialised[i]`` must be ``orjson.dumps(entities[i])``).
    """
    batches: list[EntityBatch] = []
    indices: list[int] = []
    parts: list[bytes] = []
    chosen: list[JSONObject] = []
    size = len(_PREFIX) + len(_SUFFIX)

    def flush() -> None:
        nonlocal size
        if indices:
            batches.append(EntityBatch(tuple(indices), tuple(parts), tuple(chosen)))
        indices.clear()
        parts.clear()
        chosen.clear()
        size = len(_PREFIX) + len(_SUFFIX)

    for index, entity in enumerate(entities):
        part = orjson.dumps(entity) if serialised is None else serialised[index]
        added = len(part) + (1 if parts else 0)  # the separating comma
        if parts and (len(parts) >= max_entities or size + added > max_bytes):
            flush()
            added = len(part)
        indices.append(index)
        parts.append(part)
        chosen.append(entity)
        size += added
    flush()
    return batches
