"""The reference mapper: deliberately naive, one libjq call per leaf per item, as Ocean does.

It is the yardstick, not the production path: the differential tests hold
:class:`~shoal.sync.mapping.compiler.CompiledResource` equal to it (same entities, same errors)
and the benchmark measures the compiler against it. Keep it simple and obviously right; it
must not share the compiler's fast paths. It shares only :mod:`._jq` (the per-field libjq call)
and the message texts.
"""

from __future__ import annotations

from typing import Any

from shoal.errors import ConfigError
from shoal.sync.mapping import _jq
from shoal.sync.mapping.config import ResourceConfig
from shoal.sync.mapping.result import (
    NOT_AN_OBJECT_MESSAGE,
    FieldErrorPolicy,
    ItemError,
    MappedBatch,
    missing_key_message,
    not_a_list_message,
    selector_message,
)
from shoal.types import JSON

__all__ = ["ReferenceMapper"]


class _LeafError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ReferenceMapper:
    """Maps items exactly like Ocean's per-field evaluator, with Shoal's error rules.

    Raises :class:`~shoal.errors.ConfigError` on construction when a leaf is not valid jq.
    """

    def __init__(
        self, resource: ResourceConfig, *, on_field_error: FieldErrorPolicy = "error"
    ) -> None:
        self.resource = resource
        self.on_field_error = on_field_error
        self._tree = resource.port.entity.mappings.leaf_tree()
        self._programs: dict[str, Any] = {}
        self._deletion: str | None = None
        port = resource.port
        where = f"resource {resource.kind!r}"
        self._program(resource.selector.query, f"{where} selector.query")
        if port.items_to_parse is not None:
            self._program(port.items_to_parse, f"{where} itemsToParse")
            if port.items_to_parse_top_level_transform:
                path = _jq.deletion_path(port.items_to_parse)
                if path is None:
                    raise ConfigError(
                        f"{where} itemsToParse: cannot tell which key of the item holds the "
                        "array; set itemsToParseTopLevelTransform: false"
                    )
                self._deletion = f". | del({path})"
                self._program(self._deletion, f"{where} itemsToParseTopLevelTransform")
        self._compile_tree(self._tree, where)

    def _compile_tree(self, node: Any, where: str) -> None:
        if isinstance(node, dict):
            for value in node.values():
                self._compile_tree(value, where)
        elif isinstance(node, list):
            for value in node:
                self._compile_tree(value, where)
        elif node is not None:
            self._program(node, where)

    def _program(self, expression: str, where: str = "") -> Any:
        # Ocean caches compiled programs per expression text (functools.lru_cache).
        program = self._programs.get(expression)
        if program is None:
            program = self._programs[expression] = _jq.compile_expression(expression, where)
        return program

    def _run(self, expression: str, item: JSON) -> JSON:
        return _jq.first_output(self._program(expression), item)

    def map_batch(self, items: list[Any]) -> MappedBatch:
        """Map a batch, in order. See :meth:`CompiledResource.map_batch` for the contract."""
        batch = MappedBatch()
        for index, raw in enumerate(items):
            for element, item in self._expand(index, raw, batch):
                self._map_one(index, element, item, batch)
        return batch

    def _expand(self, index: int, raw: JSON, batch: MappedBatch) -> list[tuple[int | None, Any]]:
        port = self.resource.port
        if port.items_to_parse is None:
            return [(None, raw)]

        def fail(field: str, message: str) -> list[tuple[int | None, Any]]:
            batch.errors.append(ItemError(index, None, field, message, raw))
            return []

        try:
            elements = self._run(port.items_to_parse, raw)
        except _jq.JqError as exc:
            return fail("itemsToParse", str(exc))
        if elements is None or elements == []:
            return []
        if not isinstance(elements, list):
            return fail("itemsToParse", not_a_list_message(elements))
        parent = raw
        if self._deletion is not None:
            try:
                parent = self._run(self._deletion, raw)
            except _jq.JqError as exc:
                return fail("itemsToParseTopLevelTransform", str(exc))
        if not isinstance(parent, dict):
            return fail("itemsToParse", NOT_AN_OBJECT_MESSAGE)
        name = port.items_to_parse_name
        return [(position, {**parent, name: element}) for position, element in enumerate(elements)]

    def _map_one(self, index: int, element: int | None, item: Any, batch: MappedBatch) -> None:
        def fail(field: str, message: str) -> None:
            batch.errors.append(ItemError(index, element, field, message, item))

        try:
            passed = self._run(self.resource.selector.query, item)
        except _jq.JqError as exc:
            return fail("selector", str(exc))
        if passed is False:
            batch.filtered_out += 1
            return None
        if passed is not True:
            return fail("selector", selector_message(passed))
        try:
            entity = self._evaluate(self._tree, item, "")
        except _LeafError as failure:
            return fail(failure.field, failure.message)
        for key in ("identifier", "blueprint"):
            if not entity.get(key):
                return fail(key, missing_key_message(key, entity.get(key)))
        batch.entities.append(entity)
        return None

    def _evaluate(self, node: Any, item: JSON, where: str) -> Any:
        if isinstance(node, dict):
            return {
                key: self._evaluate(value, item, f"{where}.{key}" if where else key)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [self._evaluate(value, item, f"{where}[{i}]") for i, value in enumerate(node)]
        if node is None:
            return None
        try:
            return self._run(node, item)
        except _jq.JqError as exc:
            if self.on_field_error == "null":
                return None
            raise _LeafError(where, str(exc)) from None
