"""What mapping a batch produces: entities, a filtered-out count and per-item errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import orjson

from shoal.errors import MappingError
from shoal.types import JSON, JSONObject

__all__ = ["FieldErrorPolicy", "ItemError", "MappedBatch"]

FieldErrorPolicy: TypeAlias = Literal["error", "null"]
"""What a jq runtime error in a mapping field does: fail the item (``"error"``, the default)
or map that field to ``null`` (``"null"``, what Ocean does)."""

_PREVIEW_CHARS = 200


@dataclass(frozen=True, slots=True)
class ItemError:
    """One item that could not be mapped to an entity.

    ``index`` is the item's position in the batch given to ``map_batch``; ``element`` its
    position in the ``itemsToParse`` array when the resource expands items (``None``
    otherwise). ``field`` names what failed (``selector``, ``identifier``,
    ``properties.url``, ``itemsToParse`` …) and ``message`` says why, on one line (for a jq
    runtime error, libjq's message). ``item`` is the object the failing expression was
    evaluated against (for ``itemsToParse`` resources: the parent merged with its element).
    ``str(error)`` reads ``item 3: properties.url: Cannot index string with "x"``.
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
        where = f"item {self.index}"
        if self.element is not None:
            where += f" element {self.element}"
        return f"{where}: {self.field}: {self.message}"


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


# Messages shared by both engines, so that "identical errors" is a meaningful check. They do
# not repeat ItemError.field; str(ItemError) puts the two together.


def selector_message(value: JSON) -> str:
    """The message for a selector whose first output is not a boolean."""
    return f"the query must produce true or false, got {preview(value)}"


def missing_key_message(key: str, value: JSON) -> str:
    """The message for an entity whose identifier or blueprint maps to nothing."""
    return f"mapped to {preview(value)}; an entity needs a non-empty {key}"


def not_a_list_message(value: JSON) -> str:
    """The message for an ``itemsToParse`` expression that does not produce an array."""
    return f"expected an array (or null), got {preview(value)}"


NOT_AN_OBJECT_MESSAGE = "the item is not an object, so its elements cannot be merged into it"
