"""Blueprints: entity types with a JSON schema and relations (pure rules, no IO)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema
import orjson
from jsonschema.protocols import Validator

from shoal.errors import InvalidInputError
from shoal.types import JSONObject

__all__ = [
    "IDENTIFIER_PATTERN",
    "PropertyCheck",
    "check_identifier",
    "compile_property_check",
    "compile_validator",
    "merge_blueprint",
    "normalize_blueprint",
]

IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9@_.:\\/=+-][A-Za-z0-9@_.:\\/=+ -]{0,999}")
"""Port's identifier alphabet (plus ``+`` and inner spaces, which real sources produce)."""

_BLUEPRINT_ID = re.compile(r"[A-Za-z0-9@_=\-]{1,100}")
_OPAQUE_KEYS = (
    "mirrorProperties",
    "calculationProperties",
    "aggregationProperties",
    "teamInheritance",
    "ownership",
    "changelogDestination",
    "description",
)


def check_identifier(value: Any, what: str = "identifier") -> str:
    """Return ``value`` if it is a valid entity identifier, else raise InvalidInputError."""
    if not isinstance(value, str) or not IDENTIFIER_PATTERN.fullmatch(value):
        message = (
            f"{what} {value!r} is invalid: use 1-1000 characters from A-Z a-z 0-9 @ _ . : / = + - "
            "and spaces (not leading)"
        )
        raise InvalidInputError(message)
    return value


def normalize_blueprint(body: Any) -> JSONObject:
    """Validate a blueprint body and fill in what Port fills in.

    Every relation gets ``target``, ``title``, ``many`` and ``required``; ``schema`` always has
    ``properties`` and ``required``. Unknown top-level keys are kept as given.
    """
    if not isinstance(body, Mapping):
        message = "a blueprint must be a JSON object"
        raise InvalidInputError(message)
    identifier = body.get("identifier")
    if not isinstance(identifier, str) or not _BLUEPRINT_ID.fullmatch(identifier):
        message = (
            f"blueprint identifier {identifier!r} is invalid: use 1-100 of A-Z a-z 0-9 @ _ = -"
        )
        raise InvalidInputError(message)
    result: JSONObject = {key: value for key, value in body.items() if key != "ok"}
    title = body.get("title", identifier)
    if title is not None and not isinstance(title, str):
        message = f"blueprint {identifier}: title must be a string"
        raise InvalidInputError(message)
    result["title"] = title or identifier
    result["schema"] = _normalize_schema(identifier, body.get("schema"))
    result["relations"] = _normalize_relations(identifier, body.get("relations"))
    for key in _OPAQUE_KEYS:
        result.setdefault(key, {} if key.endswith("Properties") else None)
    for key in ("mirrorProperties", "calculationProperties", "aggregationProperties"):
        if not isinstance(result[key], Mapping):
            result[key] = {}
    return result


def _normalize_schema(identifier: str, schema: Any) -> JSONObject:
    if schema is None:
        schema = {}
    if not isinstance(schema, Mapping):
        message = f"blueprint {identifier}: schema must be an object"
        raise InvalidInputError(message)
    result: JSONObject = dict(schema)
    properties = result.setdefault("properties", {})
    required = result.setdefault("required", [])
    if not isinstance(properties, Mapping) or not all(
        isinstance(p, Mapping) for p in properties.values()
    ):
        message = f"blueprint {identifier}: schema.properties must map names to objects"
        raise InvalidInputError(message)
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        message = f"blueprint {identifier}: schema.required must be a list of property names"
        raise InvalidInputError(message)
    result.setdefault("type", "object")
    try:
        jsonschema.Draft7Validator.check_schema(_property_schema(result))
    except jsonschema.SchemaError as exc:
        message = f"blueprint {identifier}: schema is not a valid JSON schema: {exc.message}"
        raise InvalidInputError(message) from None
    return result


_RELATION_NAME_MAX = 100
"""The longest relation name (entity_relations.relation holds it)."""


def _normalize_relations(identifier: str, relations: Any) -> JSONObject:
    if relations is None:
        return {}
    if not isinstance(relations, Mapping):
        message = f"blueprint {identifier}: relations must be an object"
        raise InvalidInputError(message)
    result: JSONObject = {}
    for name, relation in relations.items():
        if not 1 <= len(name) <= _RELATION_NAME_MAX:
            message = (
                f"blueprint {identifier}: relation name {name[:40]!r} must be 1-"
                f"{_RELATION_NAME_MAX} characters"
            )
            raise InvalidInputError(message)
        if not isinstance(relation, Mapping) or not isinstance(relation.get("target"), str):
            message = f"blueprint {identifier}: relation {name!r} needs a 'target' blueprint"
            raise InvalidInputError(message)
        for flag in ("many", "required"):
            if not isinstance(relation.get(flag, False), bool):
                message = f"blueprint {identifier}: relation {name!r}.{flag} must be a boolean"
                raise InvalidInputError(message)
        result[name] = {
            **relation,
            "title": relation.get("title") or name,
            "target": relation["target"],
            "many": relation.get("many", False),
            "required": relation.get("required", False),
        }
    return result


def merge_blueprint(current: JSONObject, patch: Any) -> JSONObject:
    """PATCH semantics: top-level keys of ``patch`` replace those of ``current``."""
    if not isinstance(patch, Mapping):
        message = "a blueprint patch must be a JSON object"
        raise InvalidInputError(message)
    if "identifier" in patch and patch["identifier"] != current["identifier"]:
        message = "a blueprint's identifier cannot be changed"
        raise InvalidInputError(message)
    return normalize_blueprint({**current, **patch})


# Port property formats that carry no constraint JSON Schema knows.
_PORT_FORMATS = frozenset(
    {
        "url",
        "email",
        "date-time",
        "ipv4",
        "ipv6",
        "user",
        "team",
        "timer",
        "markdown",
        "yaml",
        "json",
        "proto",
        "entity",
        "calendar",
    }
)


def _property_schema(schema: JSONObject) -> JSONObject:
    """The JSON schema entity properties are validated against.

    ``null`` is accepted for every property that is not required (Ocean maps absent fields to
    null), and Port-only keywords are left to the UI.
    """
    properties: JSONObject = {}
    required = list(schema.get("required", []))
    for name, spec in schema.get("properties", {}).items():
        spec = {k: v for k, v in spec.items() if k != "format" or v not in _PORT_FORMATS}
        properties[name] = spec if name in required else {"anyOf": [{"type": "null"}, spec]}
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def compile_validator(blueprint: JSONObject) -> Validator:
    """A validator for the ``properties`` of entities of ``blueprint`` (compiled once, reused)."""
    validator: Validator = jsonschema.Draft7Validator(_property_schema(blueprint["schema"]))
    return validator


PropertyCheck = Callable[[Mapping[str, Any]], bool]
"""``check(properties)``: True only if the blueprint's validator accepts them (see below)."""

# Draft 7 keywords that constrain a value; any other key of a property spec is an annotation.
_VALIDATION_KEYWORDS = frozenset(
    {
        "$ref",
        "additionalItems",
        "additionalProperties",
        "allOf",
        "anyOf",
        "const",
        "contains",
        "dependencies",
        "else",
        "enum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "format",
        "if",
        "items",
        "maxItems",
        "maxLength",
        "maxProperties",
        "maximum",
        "minItems",
        "minLength",
        "minProperties",
        "minimum",
        "multipleOf",
        "not",
        "oneOf",
        "pattern",
        "patternProperties",
        "properties",
        "propertyNames",
        "required",
        "then",
        "type",
        "uniqueItems",
    }
)
_SIMPLE_KEYWORDS = frozenset({"type", "enum", "format"})  # format: no format checker is used


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


# Draft 7's type checks, restricted to what orjson produces (anything else: "not sure").
_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda value: isinstance(value, str),
    "number": _is_number,
    "integer": _is_integer,
    "boolean": lambda value: isinstance(value, bool),
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "null": lambda value: value is None,
}


def _never(_value: Any) -> bool:
    return False


def _always(_value: Any) -> bool:
    return True


def _value_check(spec: Mapping[str, Any]) -> Callable[[Any], bool]:
    """A check of one property value against its spec (True only if valid)."""
    if b'"$ref"' in orjson.dumps(spec):
        return _never  # resolved against the whole schema: leave it to the full validator
    if not (set(spec) & _VALIDATION_KEYWORDS) <= _SIMPLE_KEYWORDS:
        return jsonschema.Draft7Validator(dict(spec)).is_valid
    types = spec.get("type")
    names = [types] if isinstance(types, str) else types
    enum = spec.get("enum")
    if (names is not None and not all(name in _TYPE_CHECKS for name in names)) or (
        enum is not None and not (isinstance(enum, list) and all(isinstance(e, str) for e in enum))
    ):
        return jsonschema.Draft7Validator(dict(spec)).is_valid
    if enum is not None:
        # jsonschema's enum equality: a string equals only an equal string, so only strings
        # pass, and only if "string" is an allowed type
        if names is not None and "string" not in names:
            return _never
        allowed = frozenset(enum)
        return lambda value: isinstance(value, str) and value in allowed
    if names is None:
        return _always
    type_checks = tuple(_TYPE_CHECKS[name] for name in names)
    if len(type_checks) == 1:
        return type_checks[0]
    return lambda value: any(type_check(value) for type_check in type_checks)


def compile_property_check(blueprint: JSONObject) -> PropertyCheck:
    """A fast, sound stand-in for ``compile_validator(blueprint).is_valid``.

    It answers True only for properties the full validator accepts. Port blueprints mostly use
    ``type``, ``enum`` and ``format`` (which is not checked), and those are checked here with a
    few ``isinstance`` calls; any other keyword is checked by a jsonschema validator of just that
    property. False means "invalid, or not sure": ask the full validator, which also words the
    error.
    """
    schema = _property_schema(blueprint["schema"])
    required = tuple(schema["required"])
    checks = {
        name: _value_check(spec if name in required else spec["anyOf"][1])
        for name, spec in schema["properties"].items()
    }

    def check(properties: Mapping[str, Any]) -> bool:
        for name in required:
            if name not in properties:
                return False
        for name, value in properties.items():
            value_check = checks.get(name)
            if value_check is None:  # additionalProperties: false
                return False
            if value is None and name not in required:
                continue
            if not value_check(value):  # null too, for a required property: its spec decides
                return False
        return True

    return check
