"""Mapping raw items to entities with a Port-compatible mapping config.

Parse the config once (:func:`parse_mapping_config`), compile each resource once per resync
(:func:`compile_resource`), then map every batch of raw items of that resource
(:meth:`CompiledResource.map_batch`). :class:`ReferenceMapper` is the naive per-field
evaluator (Ocean's execution model) that the compiler is tested and benchmarked against.
"""

from shoal.sync.mapping.compiler import CompiledResource, Tier, compile_resource
from shoal.sync.mapping.config import (
    EntityConfig,
    EntityMappings,
    JqExpression,
    MappingConfig,
    PortResourceConfig,
    ResourceConfig,
    Rule,
    SearchQuery,
    Selector,
    parse_mapping_config,
)
from shoal.sync.mapping.reference import ReferenceMapper
from shoal.sync.mapping.result import FieldErrorPolicy, ItemError, MappedBatch

__all__ = [
    "CompiledResource",
    "EntityConfig",
    "EntityMappings",
    "FieldErrorPolicy",
    "ItemError",
    "JqExpression",
    "MappedBatch",
    "MappingConfig",
    "PortResourceConfig",
    "ReferenceMapper",
    "ResourceConfig",
    "Rule",
    "SearchQuery",
    "Selector",
    "Tier",
    "compile_resource",
    "parse_mapping_config",
]
