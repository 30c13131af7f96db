"""The search query language (Port's subset): parse, evaluate, and derive SQL prefilters.

A query is ``{"combinator": "and"|"or", "rules": [rule | query, ...]}``; a rule is
``{"property": name, "operator": op, "value": v}`` or ``{"relation": name, ...}``. Property names
starting with ``$`` are meta fields (``$identifier``, ``$blueprint``, ``$datasource``, ``$title``,
``$team``, ``$icon``, ``$createdAt``, ``$updatedAt``); anything else is an entity property.

The store narrows candidates with :func:`prefilter` (indexed columns only, never wrong to apply)
and then decides with :func:`matches`, so the semantics live here, once, for every engine.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from shoal.clock import from_iso
from shoal.errors import InvalidInputError

__all__ = [
    "OPERATORS",
    "Prefilter",
    "Query",
    "Rule",
    "matches",
    "parse_query",
    "prefilter",
]

Combinator: TypeAlias = Literal["and", "or"]

OPERATORS = frozenset(
    {
        "=",
        "!=",
        "in",
        "notIn",
        "contains",
        "doesNotContains",
        "containsAny",
        "beginsWith",
        "doesNotBeginsWith",
        "endsWith",
        "doesNotEndsWith",
        "isEmpty",
        "isNotEmpty",
        "between",
        "notBetween",
        ">",
        "<",
        ">=",
        "<=",
    }
)
META_FIELDS = frozenset(
    {
        "$identifier",
        "$blueprint",
        "$datasource",
        "$title",
        "$team",
        "$icon",
        "$createdAt",
        "$updatedAt",
    }
)
_TIME_FIELDS = frozenset({"$createdAt", "$updatedAt"})
_TIME_OPERATORS = frozenset(
    {
        "=",
        "!=",
        "in",
        "notIn",
        ">",
        "<",
        ">=",
        "<=",
        "between",
        "notBetween",
        "isEmpty",
        "isNotEmpty",
    }
)
"""What applies to ``$createdAt``/``$updatedAt``, which are moments, not strings."""


@dataclass(frozen=True, slots=True)
class Rule:
    property: str
    operator: str
    value: Any
    is_relation: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    combinator: Combinator
    rules: tuple[Rule | Query, ...]


MAX_DEPTH = 20
"""Deepest nesting of queries inside queries (evaluation is recursive)."""


def parse_query(data: Any, *, where: str = "query", depth: int = 1) -> Query:
    """Validate a JSON search query into a :class:`Query`, or raise InvalidInputError."""
    if depth > MAX_DEPTH:
        message = f"{where}: queries may be nested at most {MAX_DEPTH} levels deep"
        raise InvalidInputError(message)
    if not isinstance(data, Mapping):
        message = f"{where} must be an object with 'combinator' and 'rules'"
        raise InvalidInputError(message)
    combinator = data.get("combinator", "and")
    if combinator not in ("and", "or"):
        message = f"{where}.combinator must be 'and' or 'or', got {combinator!r}"
        raise InvalidInputError(message)
    rules = data.get("rules")
    if not isinstance(rules, list):
        message = f"{where}.rules must be a list"
        raise InvalidInputError(message)
    parsed: list[Rule | Query] = []
    for index, rule in enumerate(rules):
        here = f"{where}.rules[{index}]"
        if isinstance(rule, Mapping) and "rules" in rule:
            parsed.append(parse_query(rule, where=here, depth=depth + 1))
        else:
            parsed.append(_parse_rule(rule, here))
    return Query(combinator, tuple(parsed))


def is_search_query(value: Any) -> bool:
    """True for a JSON object shaped like a search query (used for identifiers and relations)."""
    return isinstance(value, Mapping) and "rules" in value


def _parse_rule(data: Any, where: str) -> Rule:
    if not isinstance(data, Mapping):
        message = f"{where} must be an object"
        raise InvalidInputError(message)
    operator = data.get("operator")
    if not isinstance(operator, str) or operator not in OPERATORS:
        message = f"{where}.operator {operator!r} is not supported; use one of {sorted(OPERATORS)}"
        raise InvalidInputError(message)
    is_relation = "relation" in data and "property" not in data
    name = data.get("relation") if is_relation else data.get("property")
    if not isinstance(name, str) or not name:
        message = f"{where} needs a 'property' (or 'relation') name"
        raise InvalidInputError(message)
    if name.startswith("$") and name not in META_FIELDS:
        message = f"{where}.property {name!r} is not a known meta property"
        raise InvalidInputError(message)
    value = data.get("value")
    if operator in ("in", "notIn", "containsAny") and not isinstance(value, list):
        message = f"{where}: operator {operator!r} needs a list value"
        raise InvalidInputError(message)
    if name in _TIME_FIELDS and operator not in _TIME_OPERATORS:
        message = f"{where}: operator {operator!r} does not apply to {name}, a timestamp"
        raise InvalidInputError(message)
    if operator in ("between", "notBetween"):
        value = _parse_range(value, where)
    elif name in _TIME_FIELDS and operator in ("in", "notIn"):
        value = [_time_value(item, where) for item in value or ()]
    elif name in _TIME_FIELDS and operator in (">", "<", ">=", "<=", "=", "!="):
        value = _time_value(value, where)
    return Rule(name, operator, value, is_relation)


def _parse_range(value: Any, where: str) -> tuple[int, int]:
    if not isinstance(value, Mapping) or "from" not in value or "to" not in value:
        message = f"{where}: between needs a value {{'from': iso, 'to': iso}}"
        raise InvalidInputError(message)
    return _time_value(value["from"], where), _time_value(value["to"], where)


def _time_value(value: Any, where: str) -> int:
    if not isinstance(value, str):
        message = f"{where}: expected an ISO-8601 timestamp, got {value!r}"
        raise InvalidInputError(message)
    return from_iso(value)


# --- evaluation -------------------------------------------------------------------------------

Getter: TypeAlias = Callable[[str, bool], Any]
"""``get(name, is_relation)`` returns the value of a field of one entity."""


def matches(query: Query, get: Getter) -> bool:
    """Evaluate ``query`` against one entity. An empty ``and`` is true, an empty ``or`` false."""
    if query.combinator == "and":
        return all(_matches_one(rule, get) for rule in query.rules)
    return any(_matches_one(rule, get) for rule in query.rules)


def _matches_one(rule: Rule | Query, get: Getter) -> bool:
    if isinstance(rule, Query):
        return matches(rule, get)
    actual = get(rule.property, rule.is_relation)
    if rule.operator in ("between", "notBetween") and rule.property not in _TIME_FIELDS:
        actual = _moment(actual)  # a date-time property, or nothing between two moments
    return _apply(rule.operator, actual, rule.value)


def _is_empty(actual: Any) -> bool:
    return actual is None or actual == "" or actual == [] or actual == {}


def _as_list(actual: Any) -> list[Any]:
    if actual is None:
        return []
    return actual if isinstance(actual, list) else [actual]


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1`` (as Python's ``==`` has it), ``1`` is ``1.0``."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if type(a) is list and type(b) is list:
        return len(a) == len(b) and all(map(_same, a, b))
    if type(a) is dict and type(b) is dict:
        return a.keys() == b.keys() and all(_same(value, b[key]) for key, value in a.items())
    return bool(a == b)


def _among(value: Any, values: list[Any]) -> bool:
    if type(value) is str:  # a string equals only the same string: `in` (in C) is exact
        return value in values
    return any(_same(value, item) for item in values)


def _apply(operator: str, actual: Any, expected: Any) -> bool:
    match operator:
        case "=":
            if isinstance(actual, list) and not isinstance(expected, list):
                return _among(expected, actual)
            return _same(actual, expected)
        case "!=":
            return not _apply("=", actual, expected)
        case "in":
            return any(_among(item, expected) for item in _as_list(actual))
        case "notIn":
            return not _apply("in", actual, expected)
        case "contains":
            if isinstance(actual, str):
                return isinstance(expected, str) and expected in actual
            return _among(expected, _as_list(actual))
        case "doesNotContains":
            return not _apply("contains", actual, expected)
        case "containsAny":
            if isinstance(actual, str):
                return any(isinstance(e, str) and e in actual for e in expected)
            return any(_among(e, _as_list(actual)) for e in expected)
        case "beginsWith":
            return (
                isinstance(actual, str)
                and isinstance(expected, str)
                and actual.startswith(expected)
            )
        case "doesNotBeginsWith":
            return not _apply("beginsWith", actual, expected)
        case "endsWith":
            return (
                isinstance(actual, str) and isinstance(expected, str) and actual.endswith(expected)
            )
        case "doesNotEndsWith":
            return not _apply("endsWith", actual, expected)
        case "isEmpty":
            return _is_empty(actual)
        case "isNotEmpty":
            return not _is_empty(actual)
        case "between":
            low, high = expected
            return isinstance(actual, int) and low <= actual <= high
        case "notBetween":
            return not _apply("between", actual, expected)
        case ">" | "<" | ">=" | "<=":
            return _compare(operator, actual, expected)
    raise AssertionError(operator)  # parse_query admits only OPERATORS


def _moment(actual: Any) -> int | None:
    """A property's ISO-8601 timestamp (with a zone) as epoch microseconds, as the meta
    timestamps are held; None for anything else."""
    if isinstance(actual, str):
        with contextlib.suppress(InvalidInputError):
            return from_iso(actual)
    return None


_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T")
_expected_moment = functools.lru_cache(maxsize=256)(_moment)
"""A query's own timestamps, parsed once rather than once per candidate entity."""


def _compare(operator: str, actual: Any, expected: Any) -> bool:
    numbers = (int, float)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return False
    if isinstance(expected, str) and _TIMESTAMP.match(expected):
        # a date-time property: moments compare, whatever their zones ("...+02:00" vs "...Z")
        moment = _expected_moment(expected)
        if moment is not None:
            actual, expected = _moment(actual), moment
            if actual is None:
                return False
    comparable = (isinstance(actual, numbers) and isinstance(expected, numbers)) or (
        isinstance(actual, str) and isinstance(expected, str)
    )
    if not comparable:
        return False
    if operator == ">":
        return bool(actual > expected)
    if operator == "<":
        return bool(actual < expected)
    if operator == ">=":
        return bool(actual >= expected)
    return bool(actual <= expected)


# --- SQL prefilter ----------------------------------------------------------------------------


@dataclass(slots=True)
class Prefilter:
    """Constraints on indexed columns implied by a query (a necessary condition, never more).

    Each field narrows the candidate rows; the store must still call :func:`matches` on them.
    ``empty`` means the query can match nothing (e.g. an empty ``or``).
    """

    identifiers: set[str] | None = None
    blueprints: set[str] | None = None
    datasource_like: list[str] = field(default_factory=list)
    updated_before: int | None = None
    updated_after: int | None = None
    empty: bool = False


_LIKE_SPECIAL = re.compile(r"([\\%_])")
_MAX_LIKES = 4
"""LIKE conditions a prefilter keeps at most (SQLite refuses a statement of a thousand)."""
MAX_DATASOURCE = 1000
"""Entities' datasource stamps are cut to this many characters."""


def like_escape(text: str) -> str:
    """Escape ``text`` for a SQL LIKE pattern with ``ESCAPE '\\'``."""
    return _LIKE_SPECIAL.sub(r"\\\1", text)


def prefilter(query: Query) -> Prefilter:
    """Derive indexed-column constraints from the top-level ``and`` rules of ``query``."""
    result = Prefilter()
    if query.combinator == "or":
        result.empty = not query.rules
        return result
    for rule in query.rules:
        if isinstance(rule, Query):
            if rule.combinator == "or" and not rule.rules:
                result.empty = True
            continue
        _narrow(result, rule)
    return result


def _intersect(current: set[str] | None, values: Sequence[Any]) -> set[str]:
    new = {value for value in values if isinstance(value, str)}
    return new if current is None else current & new


def _narrow(result: Prefilter, rule: Rule) -> None:
    name, op, value = rule.property, rule.operator, rule.value
    if rule.is_relation:
        return
    if name in ("$identifier", "$blueprint"):
        values: list[Any] | None = None
        if op == "=" and isinstance(value, str):
            values = [value]
        elif op == "in":
            values = list(value)
        if values is not None:
            if name == "$identifier":
                result.identifiers = _intersect(result.identifiers, values)
            else:
                result.blueprints = _intersect(result.blueprints, values)
    elif name == "$datasource" and isinstance(value, str):
        if len(value) > MAX_DATASOURCE and op in ("=", "contains", "beginsWith", "endsWith"):
            result.empty = True  # no stored datasource is that long
            return
        if len(result.datasource_like) >= _MAX_LIKES:
            return  # enough to narrow by; the rest is for matches() to decide
        patterns = {
            "=": like_escape(value),
            "contains": f"%{like_escape(value)}%",
            "beginsWith": f"{like_escape(value)}%",
            "endsWith": f"%{like_escape(value)}",
        }
        if op in patterns:
            result.datasource_like.append(patterns[op])
    elif name == "$updatedAt":
        if op == "notBetween":
            return
        if op == "between":
            low, high = value
            result.updated_after = (
                low if result.updated_after is None else max(low, result.updated_after)
            )
            result.updated_before = (
                high if result.updated_before is None else min(high, result.updated_before)
            )
        elif op in ("<", "<="):
            result.updated_before = (
                value if result.updated_before is None else min(value, result.updated_before)
            )
        elif op in (">", ">="):
            result.updated_after = (
                value if result.updated_after is None else max(value, result.updated_after)
            )
