"""Native evaluation of the leaves most configs are made of: constants and plain paths.

About 80% of real jq leaves are a constant (``'"githubRepository"'``, ``true``, ``42``) or a
plain path (``.a.b``, ``.a[0]``, ``.["a-b"]``, ``."a b"``, with optional ``?``). For those a few
dict/list lookups replace a libjq round trip (serialise the item, parse it, run, convert back).

The contract is *libjq's result or nothing*: a getter returns exactly what
``jq.compile(path).input_value(item).first()`` would, or raises :class:`NeedsJq` when the
answer is not plain (a jq error such as indexing a string, or a value whose conversion through
libjq changes it: ints beyond 2**53, NaN, non-JSON Python types). Callers then ask libjq.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shoal.types import JSON

__all__ = [
    "Getter",
    "NeedsJq",
    "PathSegment",
    "canonical",
    "is_constant",
    "make_deleter",
    "make_getter",
    "native_combination",
    "parse_path",
    "split_leading_path",
]

Getter = Callable[[Any], Any]


class NeedsJq(Exception):  # noqa: N818 - a signal, not an error condition
    """The native evaluation cannot decide this case exactly; evaluate it with libjq."""


class _KeysNeedJq(NeedsJq):
    """An object with non-string keys (as YAML gives): libjq sees them as strings, so whether
    a key is there is for libjq to say; ``?`` must not read this as an error of its step."""


_EXACT_INT = 2**53  # beyond this libjq's double conversion changes an int


def canonical(value: Any) -> JSON:
    """``value`` as it comes back from a libjq round trip, or NeedsJq if that is not obvious.

    libjq (through the ``jq`` bindings) returns integral numbers as ``int`` (``1.0`` → ``1``),
    keeps object key order, and builds fresh containers; so do we.
    """
    kind = type(value)
    if kind is str:
        if not value.isascii():
            _check_encodable(value)
        return value
    if value is None or kind is bool:
        return value
    if kind is int:
        if -_EXACT_INT <= value <= _EXACT_INT:
            return value
        raise NeedsJq
    if kind is float:
        if value.is_integer():
            return int(value)
        if math.isfinite(value):
            return value
        raise NeedsJq
    if kind is dict:
        result = {}
        for key, item in value.items():
            if type(key) is not str:
                raise NeedsJq
            if not key.isascii():
                _check_encodable(key)
            result[key] = canonical(item)
        return result
    if kind is list:
        return [canonical(item) for item in value]
    raise NeedsJq


def _check_encodable(text: str) -> None:
    # Lone surrogates survive in Python strings (json.loads makes them of "\ud83d"); libjq
    # refuses such a value, so a leaf reading one is left to it (and fails).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NeedsJq from None


@dataclass(frozen=True, slots=True)
class PathSegment:
    """One step of a plain path: an object key (str) or an array index (int)."""

    key: str | int
    optional: bool = False


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_INDEX = re.compile(r"-?[0-9]{1,9}")


def parse_path(text: str) -> list[PathSegment] | None:
    """Segments of a plain jq path (``.``, ``.a.b``, ``.a[0]``, ``.["k"]``, ``."k"``, ``?``).

    ``None`` for anything else. Deliberately strict: whatever is not recognised here is simply
    left to libjq, which is always correct.
    """
    text = text.strip()
    if text == ".":
        return []
    segments: list[PathSegment] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == ".":
            position += 1
            step = _parse_name(text, position)
            if step is None:
                if not text.startswith("[", position):
                    return None
                step = _parse_bracket(text, position)
        elif char == "[" and segments:
            step = _parse_bracket(text, position)
        else:
            return None
        if step is None:
            return None
        key, position = step
        optional = text.startswith("?", position)
        position += optional
        segments.append(PathSegment(key, optional))
    return segments or None


def _parse_name(text: str, position: int) -> tuple[str | int, int] | None:
    ident = _IDENT.match(text, position)
    if ident is not None:
        return ident.group(0), ident.end()
    string = _STRING.match(text, position)
    if string is not None:
        key = _string_literal(string.group(0))
        return None if key is None else (key, string.end())
    return None


def _parse_bracket(text: str, position: int) -> tuple[str | int, int] | None:
    position = _skip_spaces(text, position + 1)
    literal = _STRING.match(text, position) or _INDEX.match(text, position)
    if literal is None:
        return None
    token = literal.group(0)
    key = _string_literal(token) if token.startswith('"') else int(token)
    if key is None:
        return None
    position = _skip_spaces(text, literal.end())
    if not text.startswith("]", position):
        return None
    return key, position + 1


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _string_literal(token: str) -> str | None:
    # jq string literals use JSON's escapes plus `\(…)` interpolation (not a plain key).
    if "\\(" in token:
        return None
    try:
        key = json.loads(token)
    except ValueError:
        return None
    if not isinstance(key, str):
        return None
    try:
        key.encode("utf-8")  # a lone surrogate (`"\ud800"`) means something else to libjq
    except UnicodeEncodeError:
        return None
    return key


def make_getter(segments: list[PathSegment], *, raw: bool = False) -> Getter:
    """A function evaluating the path on an item with jq's semantics.

    ``null`` (and a missing key, and an index out of range) yields ``None``; indexing anything
    else raises NeedsJq (libjq raises an error, or, under ``?``, produces nothing). With
    ``raw=True`` the value is returned as found in the item, uncanonicalised (used to feed
    sub-trees to libjq, which must see the original text of numbers).
    """
    finish: Callable[[Any], Any] = _identity if raw else canonical
    if not any(segment.optional for segment in segments):
        if all(isinstance(segment.key, str) for segment in segments):
            return _key_getter([str(segment.key) for segment in segments], finish)
        return _step_getter([segment.key for segment in segments], finish)
    return _optional_getter(segments, finish)


def _identity(value: Any) -> Any:
    return value


def _key_getter(keys: list[str], finish: Callable[[Any], Any]) -> Getter:
    # The common case (`.a.b.c`) gets its own tight loop.
    def get(item: Any) -> Any:
        value = item
        for key in keys:
            if type(value) is dict:
                found = value.get(key, _MISSING)
                if found is _MISSING:
                    _check_missing(value)
                    found = None
                value = found
            elif value is None:
                return None
            else:
                raise NeedsJq
        return finish(value)

    return get


def _step_getter(keys: list[str | int], finish: Callable[[Any], Any]) -> Getter:
    def get(item: Any) -> Any:
        value = item
        for key in keys:
            if value is None:
                return None
            value = _step(value, key)
        return finish(value)

    return get


_MISSING: Any = object()


def _check_missing(container: dict[Any, Any]) -> None:
    # json.dumps (hence libjq) turns int/float/bool/None keys into strings, so `.["1"]` can
    # find the key 1. Only checked on a miss, where it is cheap relative to how rare it is.
    if any(type(k) is not str for k in container):
        raise _KeysNeedJq


def _step(value: Any, key: str | int) -> Any:
    if isinstance(key, str):
        if type(value) is dict:
            found = value.get(key, _MISSING)
            if found is _MISSING:
                _check_missing(value)
                return None
            return found
        raise NeedsJq
    if type(value) is list:
        index = key if key >= 0 else key + len(value)
        return value[index] if 0 <= index < len(value) else None
    raise NeedsJq


def _optional_getter(segments: list[PathSegment], finish: Callable[[Any], Any]) -> Getter:
    steps = [(segment.key, segment.optional) for segment in segments]

    def get(item: Any) -> Any:
        value = item
        for key, optional in steps:
            if value is None:
                return None
            try:
                value = _step(value, key)
            except _KeysNeedJq:
                raise
            except NeedsJq:
                # `?` suppresses the error of its own step only (`.[0].a?` on {} still
                # fails): no output, which Ocean reads as null.
                if optional and _is_json(value):
                    return None
                raise
        return finish(value)

    return get


def _is_json(value: Any) -> bool:
    # Only suppress an error we know libjq raises too: one on a plain JSON scalar/container.
    return type(value) in (str, int, float, bool, dict, list)


def make_deleter(segments: list[PathSegment]) -> Getter | None:
    """``del(path)`` for a path of object keys, returning the canonical result; else None.

    Deleting under a missing key or ``null`` leaves the value unchanged, as in jq; anything
    else on the way (a string, a list) raises NeedsJq.
    """
    if not segments or any(s.optional or not isinstance(s.key, str) for s in segments):
        return None
    keys = [str(segment.key) for segment in segments]

    def delete(item: Any) -> Any:
        return canonical(_delete(item, keys))

    return delete


def _delete(value: Any, keys: list[str]) -> Any:
    if value is None:
        return None
    if type(value) is not dict:
        raise NeedsJq
    head, rest = keys[0], keys[1:]
    if head not in value:
        return value
    copy = dict(value)
    if rest:
        copy[head] = _delete(value[head], rest)
    else:
        del copy[head]
    return copy


_CONSTANT = re.compile(
    r"""\s*(?:true|false|null|-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|"(?:[^"\\]|\\[^(])*")\s*"""
)


def is_constant(text: str) -> bool:
    """Whether the program is a literal (its value is then computed once, by libjq)."""
    return _CONSTANT.fullmatch(text) is not None


def split_leading_path(text: str) -> tuple[list[PathSegment], str] | None:
    """Split ``PATH | REST`` at the first top-level pipe when PATH is a plain path.

    Then REST only ever sees PATH's value (a program cannot reach the root once it has been
    piped away), so libjq can be given that sub-tree instead of the whole item. Paths with
    ``?`` are excluded: "no output" and ``null`` differ for REST.
    """
    pipe = _first_top_level_pipe(text)
    if pipe is None:
        return None
    segments = parse_path(text[:pipe])
    rest = text[pipe + 1 :]
    if segments is None or any(s.optional for s in segments) or not rest.strip():
        return None
    return segments, rest


def _first_top_level_pipe(text: str) -> int | None:
    # A small scanner that knows jq strings (with `\( … )` interpolation), brackets and
    # comments, just enough to find a `|` that is not nested. Unsure → None.
    stack: list[str] = []  # "(" "[" "{" for brackets, '"' for strings, "\\(" for interpolation
    position = 0
    while position < len(text):
        char = text[position]
        if stack and stack[-1] == '"':
            if char == "\\":
                if text.startswith("\\(", position):
                    stack.append("\\(")
                position += 2
                continue
            if char == '"':
                stack.pop()
        elif char == '"':
            stack.append('"')
        elif char == "#":
            return None  # comments are rare in leaves; not worth getting exactly right
        elif char in "([{":
            stack.append(char)
        elif char in ")]}":
            if not stack:
                return None
            stack.pop()
        elif char == "|" and not stack:
            return None if text.startswith("|=", position) else position
        position += 1
    return None


def native_combination(text: str, constant: Callable[[str], Any]) -> Getter | None:
    """A getter for the two most common leaves after plain paths, else None.

    * ``PATH // OTHER`` (OTHER a plain path or a constant): PATH's value unless it is ``null``
      or ``false``, else OTHER's. A plain path yields exactly one value, and an error on the
      left is left to libjq (NeedsJq), so first-output semantics hold.
    * ``PATH | length``: 0 for ``null``, the size of a string (code points), array or object;
      anything else (booleans raise, numbers give their absolute value) is left to libjq.

    ``constant`` evaluates a constant's text (the caller runs it through libjq once).
    """
    split = _top_level_alternative(text)
    if split is not None:
        left_text, right_text = split
        left = parse_path(left_text)
        if left is None:
            return None
        right_segments = parse_path(right_text)
        if right_segments is not None:
            right = make_getter(right_segments)
        elif is_constant(right_text):
            value = constant(right_text)
            right = lambda _item: value  # noqa: E731
        else:
            return None
        return _alternative(make_getter(left), right)
    leading = split_leading_path(text)
    if leading is not None and leading[1].strip() == "length":
        return _length(make_getter(leading[0]))
    return None


def _alternative(left: Getter, right: Getter) -> Getter:
    def get(item: Any) -> Any:
        value = left(item)
        if value is None or value is False:
            return right(item)
        return value

    return get


def _length(getter: Getter) -> Getter:
    def get(item: Any) -> Any:
        value = getter(item)
        if value is None:
            return 0
        if type(value) in (str, list, dict):
            return len(value)
        raise NeedsJq

    return get


def _top_level_alternative(text: str) -> tuple[str, str] | None:
    """Split ``A // B`` at its one top-level ``//`` when neither side holds anything but
    path or literal characters; None for anything else (``//=``, strings, brackets...)."""
    position = text.find("//")
    if position <= 0 or text.startswith("//=", position) or "//" in text[position + 2 :]:
        return None
    left, right = text[:position].strip(), text[position + 2 :].strip()
    if not left or not right or any(char in text for char in "|(){},;$#"):
        return None
    return left, right
