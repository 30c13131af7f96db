"""Helpers shared by the mapping tests: build resources, run both engines, compare strictly."""

from __future__ import annotations

import json
from typing import Any

from shoal.sync.mapping import (
    CompiledResource,
    FieldErrorPolicy,
    MappedBatch,
    ReferenceMapper,
    ResourceConfig,
    compile_resource,
)

POLICIES: tuple[FieldErrorPolicy, ...] = ("error", "null")


def resource(
    properties: dict[str, Any] | None = None,
    *,
    identifier: Any = '"id"',
    blueprint: Any = '"bp"',
    selector: str = "true",
    port: dict[str, Any] | None = None,
    **mappings: Any,
) -> ResourceConfig:
    """A resource whose mappings are the given leaves (constants for the required ones)."""
    entity_mappings: dict[str, Any] = {"identifier": identifier, "blueprint": blueprint}
    if properties is not None:
        entity_mappings["properties"] = properties
    entity_mappings.update(mappings)
    return ResourceConfig.model_validate(
        {
            "kind": "thing",
            "selector": {"query": selector},
            "port": {"entity": {"mappings": entity_mappings}, **(port or {})},
        }
    )


def strict(value: Any) -> str:
    """A rendering that tells 1 from 1.0 from True and keeps key order (== does neither)."""
    return json.dumps(value)


def error_keys(batch: MappedBatch) -> list[tuple[int, int | None, str, str]]:
    return [(e.index, e.element, e.field, e.message) for e in batch.errors]


def assert_engines_agree(
    config: ResourceConfig, items: list[Any], on_field_error: FieldErrorPolicy = "error"
) -> MappedBatch:
    """Map ``items`` with the compiler and the reference; require identical outcomes."""
    return assert_mappers_agree(
        compile_resource(config, on_field_error=on_field_error),
        ReferenceMapper(config, on_field_error=on_field_error),
        items,
    )


def assert_mappers_agree(
    compiled_resource: CompiledResource, reference: ReferenceMapper, items: list[Any]
) -> MappedBatch:
    compiled = compiled_resource.map_batch(items)
    expected = reference.map_batch(items)
    # (Plain asserts with messages: pytest does not rewrite asserts in helper modules.)
    assert strict(compiled.entities) == strict(expected.entities), (
        f"entities differ:\n compiled  {compiled.entities!r}\n reference {expected.entities!r}"
    )
    assert error_keys(compiled) == error_keys(expected), (
        f"errors differ:\n compiled  {error_keys(compiled)}\n reference {error_keys(expected)}"
    )
    assert compiled.filtered_out == expected.filtered_out
    return compiled
