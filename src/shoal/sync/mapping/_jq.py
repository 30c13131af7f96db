"""libjq with Ocean's per-field semantics: the one definition both mapping engines share.

Ocean evaluates a leaf as ``jq.compile(prog).input_value(item)`` (which is
``input_text(json.dumps(item))``) and keeps only the *first* output; no output means ``None``.
:func:`first_output` is exactly that call, except that a jq runtime error is raised as
:class:`JqError` (one line) instead of being swallowed, so each engine can decide what an error
means. The compiler falls back to this function whenever its fast paths meet a case they do not
decide themselves, which is what keeps the two engines equal.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import threading
from collections.abc import Callable
from typing import Any

import jq

from shoal.errors import ConfigError
from shoal.types import JSON

__all__ = [
    "JqError",
    "compile_expression",
    "compile_program",
    "deletion_path",
    "first_output",
    "jsonable",
    "prepare",
]


class JqError(Exception):
    """A jq runtime error (or an item libjq cannot be given); ``str()`` is one line."""


# Port's mapping editor and Ocean accept single-quoted jq strings ('x') and rewrite the quotes
# that open or close a string to double quotes before compiling; configs rely on it.
_SINGLE_QUOTE = re.compile(r"(^|\s)'(?!\s|\")|(?<!\s|\")'(\s|$)")
_BARE_COMBINATORS = frozenset({"and", "or"})


def prepare(expression: str) -> str:
    """The program text libjq compiles for a leaf as written in the config."""
    if expression.strip() in _BARE_COMBINATORS:
        # `combinator: and` is a syntax error in jq; it can only mean the literal word.
        return json.dumps(expression.strip())
    return _SINGLE_QUOTE.sub(r'\1"\2', expression)


CACHED_PROGRAMS = 1024
"""Compiled programs kept per thread, least recently used first out (~6 KB each)."""

_programs = threading.local()


def compile_program(text: str) -> Any:
    """``jq.compile(text)``, remembered: libjq takes ~1 ms to compile even ``.name``, and a
    resync compiles every field of every resource again (tens of milliseconds per run on the
    event loop) although the mapping rarely changes between runs. Programs are kept per thread
    (see :class:`~shoal.sync.mapping.compiler.CompiledResource`); an invalid program raises
    ``ValueError`` each time."""
    cached: Callable[[str], Any] | None = getattr(_programs, "compile", None)
    if cached is None:
        cached = _programs.compile = functools.lru_cache(maxsize=CACHED_PROGRAMS)(_compile)
    return cached(text)


def _compile(text: str) -> Any:
    return jq.compile(text)


def compile_expression(expression: str, where: str) -> Any:
    """Compile a config leaf (after :func:`prepare`); raise ConfigError naming ``where``."""
    try:
        return compile_program(prepare(expression))
    except ValueError as exc:
        raise ConfigError(f"{where}: invalid jq {expression!r}: {_first_line(exc)}") from None


def first_output(program: Any, value: JSON) -> JSON:
    """Run a compiled program on one input the way Ocean does; return its first output.

    ``None`` when the program produces no output. Raises :class:`JqError` on a jq runtime
    error or when the input cannot be serialised even after :func:`jsonable`.
    """
    try:
        outputs = program.input_value(value)
    except (TypeError, ValueError):
        # Ocean retries with dates turned into ISO strings when json.dumps refuses the item.
        try:
            outputs = program.input_value(jsonable(value))
        except (TypeError, ValueError) as exc:
            raise JqError(f"the item is not JSON serialisable: {_first_line(exc)}") from None
    try:
        return next(iter(outputs))
    except StopIteration:
        return None
    except ValueError as exc:
        raise JqError(_first_line(exc)) from None


def jsonable(value: Any) -> Any:
    """``value`` with dates/times replaced by their ISO strings (tuples become lists)."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text.strip() else type(exc).__name__


_IGNORED_PIPE_SEGMENT = re.compile(r"^\.\s+as\s+\$\w+")
_PATH_PREFIX = re.compile(r"(\.\w+|\.\[[^\]]+\])(\.\w+|\[[^\]]+\]|\.\[[^\]]+\])*")


def deletion_path(items_to_parse: str) -> str | None:
    """The path ``itemsToParseTopLevelTransform`` deletes from the parent, Ocean's heuristic.

    Ocean does not parse the expression: it takes the part inside a leading ``( … )``, splits it
    on ``|``, skips ``. as $x``, ``.`` and ``$var`` segments, and returns the leading path of
    the first segment that starts with one (``.status.history // []`` → ``.status.history``).
    ``None`` when no segment qualifies (Ocean then deletes ``.``, i.e. drops the whole parent).
    """
    expression = items_to_parse.strip()
    if expression.startswith("("):
        inner = re.match(r"\((.*?)\)", expression, re.DOTALL)
        if inner is None:
            return None
        expression = inner.group(1).strip()
    for raw_segment in expression.split("|"):
        segment = raw_segment.strip()
        if _IGNORED_PIPE_SEGMENT.match(segment) or segment == "." or segment.startswith("$"):
            continue
        path = _PATH_PREFIX.match(segment)
        if path is not None:
            return path.group(0).strip()
    return None
