"""What mapping a batch produces: entities, a filtered-out count and per-item errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import orjson

from shoal.errors import MappingError
from shoal.types import JSON, JSONObject

__all__ = ["ItemError", "MappedBatch"]

_PREVIEW_CHARS = 200


@dataclass(frozen=True, slots=True)
class ItemError:
    """One item that could not be mapped to an entity.

    ``index`` is the item's position in the batch given to ``map_batch``; ``element`` its
    position in the ``itemsToParse`` array when the resource expands items (``None``
    otherwise). ``field`` names what failed (``selector``, ``identifier``,
    ``properties.url``, ``itemsToParse`` …) and ``message`` says why, on one line. ``item`` is the
    object the failing expression was evaluated against (for ``itemsToParse`` resources: the
    parent merged with its element).
    """

    index: int
    element: int | None
    field: str
    message: str
    item: Any = dataclasses.field(repr=False, compare=False)

    @property
    def preview(self) -> str:
        """A short one-line JSON rendering of ``item`` for logs and run history."""
        return preview(self.item)

    def to_exception(self) -> MappingError:
        """This error as a :class:`~shoal.errors.MappingError` (to raise or record)."""
        return MappingError(str(self))

    def __str__(self) -> str:
        if self.element is None:
            return f"item {self.index}: {self.message}"
        return f"item {self.index} element {self.element}: {self.message}"


@dataclass(slots=True)
class MappedBatch:
    """The outcome of mapping one batch of raw items, in input order."""

    entities: list[JSONObject] = dataclasses.field(default_factory=list)
    filtered_out: int = 0
    """Items (after ``itemsToParse`` expansion) that the selector rejected."""
    errors: list[ItemError] = dataclasses.field(default_factory=list)


def preview(value: JSON) -> str:
    """``value`` as compact JSON, cut to a couple of hundred characters."""
    try:
        text = orjson.dumps(value, default=repr).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"


# Messages shared by both engines, so that "identical errors" is a meaningful check.


def leaf_message(field_name: str, detail: str) -> str:
    """The message of a jq runtime error in a mapping leaf."""
    return f"{field_name}: {detail}"


def selector_message(value: JSON) -> str:
    """The message for a selector whose first output is not a boolean."""
    return f"selector: the query must produce true or false, got {preview(value)}"


def missing_key_message(key: str, value: JSON) -> str:
    """The message for an entity whose identifier or blueprint maps to nothing."""
    return f"{key}: mapped to {preview(value)}; an entity needs a non-empty {key}"


def not_a_list_message(value: JSON) -> str:
    """The message for an ``itemsToParse`` expression that does not produce an array."""
    return f"itemsToParse: expected an array (or null), got {preview(value)}"


NOT_AN_OBJECT_MESSAGE = "itemsToParse: the item is not an object, so elements cannot be merged"
