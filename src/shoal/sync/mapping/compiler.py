"""Compile a resource's mapping once per resync (libjq's programs are remembered between
resyncs: :func:`._jq.compile_program`); map batches of items fast.

Ocean runs one libjq call per leaf per item, each re-serialising and re-parsing the whole
item. Here every leaf is classified once, at compile time:

``constant``  a literal (``'"githubRepository"'``, ``true``, ``42``): computed once.
``path``      a plain path (``.a.b``, ``.a[0]``, ``.["a-b"]``): native dict/list lookups; also
              ``PATH // PATH-or-constant`` and ``PATH | length``, built from such lookups.
``jq``        anything else: all such leaves of a resource (and the selector, if it is not
              trivial) are fused into ONE jq program, run once per batch over a JSON array of
              the items; each leaf is wrapped as ``try [first(LEAF)] catch null`` so it keeps
              its own first-output / error semantics. When every such leaf reads a single plain
              path first (``.x | map(.y)``), libjq is fed just those sub-trees, not the item.
``isolated``  the few leaves that would behave differently inside a bigger program
              (``input``, ``$__loc__``, ``halt``): evaluated alone, as Ocean does.

Whenever a fast path meets something it does not decide exactly (a jq error, a value libjq
would convert, an item orjson refuses), that one leaf of that one item is re-run the plain
Ocean way (:func:`._jq.first_output`), so results and error messages are those of
:class:`~shoal.sync.mapping.reference.ReferenceMapper` by construction; the differential tests
check it.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import orjson

from shoal.errors import ConfigError
from shoal.sync.mapping import _jq
from shoal.sync.mapping._native import (
    NeedsJq,
    PathSegment,
    is_constant as _is_constant,
    make_deleter,
    make_getter,
    native_combination,
    parse_path,
    split_leading_path,
)
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

__all__ = ["CompiledResource", "Tier", "compile_resource"]

Tier: TypeAlias = Literal["constant", "path", "jq", "isolated"]

# A leaf evaluator gets the item and the item's row of fused-program results (None when the
# fused program did not run for it) and returns the leaf's value or raises _jq.JqError.
_Evaluate: TypeAlias = Callable[[Any, "list[Any] | None"], Any]
_Unit: TypeAlias = tuple[int, "int | None", Any]  # (index, element, item)

# Leaves using these would see a different program around them (line numbers, the input
# stream, halting the whole batch), so they are never fused.
_UNFUSABLE = re.compile(
    r"\$__loc__|\$__prog|\binputs?\b|\binput_line_number\b|\binput_filename\b|\bhalt(_error)?\b"
)
_CHUNK = 500  # items per fused libjq call: amortises the call, bounds the text held in memory
_ORJSON_OPTIONS = (
    # Everything orjson would encode differently from json.dumps goes through the fallback.
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


@dataclass(slots=True)
class _Leaf:
    field: str
    tier: Tier
    evaluate: _Evaluate


@dataclass(frozen=True, slots=True)
class _FusedLeaf:
    """A leaf of the fused program: its text, its row slot and, if it is ``PATH | REST``,
    the split (then libjq may be fed PATH's value and run just REST)."""

    text: str
    split: tuple[list[PathSegment], str] | None
    slot: int


def compile_resource(
    resource: ResourceConfig, *, on_field_error: FieldErrorPolicy = "error"
) -> CompiledResource:
    """Compile one resource of a mapping config; do this once per resync.

    Every jq leaf is compiled (a syntax error raises :class:`~shoal.errors.ConfigError`
    naming the resource and the field) and classified; see the module docs.
    ``on_field_error`` decides what a jq runtime error in a mapping field does: ``"error"``
    (default) makes the item a mapping error, ``"null"`` maps the field to null as Ocean does.
    Errors in the selector and in ``itemsToParse`` always fail the item.
    """
    return CompiledResource(resource, on_field_error=on_field_error)


class CompiledResource:
    """A resource's mapping, ready to map batches. Build it with :func:`compile_resource`.

    Not thread-safe: libjq programs carry state, so use one instance per thread or process.
    """

    def __init__(self, resource: ResourceConfig, *, on_field_error: FieldErrorPolicy) -> None:
        self.resource = resource
        self.kind = resource.kind
        self.on_field_error = on_field_error
        self.plan: dict[str, Tier] = {}
        """How each field (and ``selector``, ``itemsToParse``) is evaluated, for inspection."""
        self._where = f"resource {resource.kind!r}"
        self._fused_leaves: list[_FusedLeaf] = []  # in row-slot order

        # Compiled first so that, when fused, it takes slot 0 of every row.
        self._selector = self._compile_leaf("selector", resource.selector.query)
        self._selector_fused = self._selector.tier == "jq"
        self._selector_always = (
            self._selector.tier == "constant" and self._selector.evaluate(None, None) is True
        )
        self._expander = (
            _Expander(resource, self._compile_leaf, self._where)
            if resource.port.items_to_parse is not None
            else None
        )
        shape, leaves = _flatten(resource.port.entity.mappings.leaf_tree())
        self._leaves = [self._compile_leaf(name, text) for name, text in leaves]
        self._build = _make_builder(shape)
        self._map_item = _make_mapper(shape, [leaf.evaluate for leaf in self._leaves])
        self._fused = _FusedProgram.build(self._fused_leaves, gated=self._selector_fused)

    def _compile_leaf(self, name: str, expression: str | None, *, fusable: bool = True) -> _Leaf:
        if expression is None:  # `title: null` in the config: the field is null
            self.plan[name] = "constant"
            return _Leaf(name, "constant", _constant(None))
        program = _jq.compile_expression(expression, f"{self._where} {name}")
        text = _jq.prepare(expression).strip()
        tier: Tier
        if _is_constant(text):
            tier, evaluate = "constant", _constant(_jq.first_output(program, None))
        elif (segments := parse_path(text)) is not None:
            tier, evaluate = "path", _path(make_getter(segments), program)
            if len(segments) == 1 and isinstance(segments[0].key, str) and not segments[0].optional:
                evaluate = _top_key(segments[0].key, evaluate)
        elif (combined := native_combination(text, _constant_value)) is not None:
            tier, evaluate = "path", _path(combined, program)
        elif not fusable or _UNFUSABLE.search(text):
            tier, evaluate = "isolated", _isolated(program)
        else:
            fused = _FusedLeaf(text, split_leading_path(text), slot=len(self._fused_leaves))
            self._fused_leaves.append(fused)
            tier, evaluate = "jq", _fused(fused.slot, program)
        self.plan[name] = tier
        return _Leaf(name, tier, evaluate)

    # -- map time -----------------------------------------------------------------------

    def map_batch(self, items: Sequence[Any]) -> MappedBatch:
        """Map a batch of raw items to entities, in order.

        For each item (after ``itemsToParse`` expansion): the selector must produce exactly
        ``true`` (``false`` counts as filtered out; anything else, or a jq error, is an item
        error); then every mapped field is evaluated (first jq output; no output → null);
        the entity holds only the keys the config maps. An item whose ``identifier`` or
        ``blueprint`` maps to null, ``""`` (or another falsy value) is an item error, never
        a silent drop. Errors are returned, not raised, in input order.
        """
        batch = MappedBatch()
        units = self._expander.expand(items, batch) if self._expander else _units(items)
        passing, rows = self._select(units, batch)
        map_item = self._map_item
        for (index, element, item), row in zip(passing, rows, strict=True):
            try:
                entity = map_item(item, row)
            except _jq.JqError:  # evaluation has no side effects: redo it leaf by leaf
                values = self._values_one_by_one(index, element, item, row, batch)
                if values is None:
                    continue
                entity = self._build(values)
            if entity["identifier"] and entity["blueprint"]:
                batch.entities.append(entity)
            else:
                key = "blueprint" if entity["identifier"] else "identifier"
                message = missing_key_message(key, entity[key])
                batch.errors.append(ItemError(index, element, key, message, item))
        batch.errors.sort(key=_error_order)
        return batch

    def _values_one_by_one(
        self, index: int, element: int | None, item: Any, row: Any, batch: MappedBatch
    ) -> list[Any] | None:
        """The leaf values of an item some leaf raised on: None (and an item error) under the
        ``error`` policy, the value None for each raising leaf under ``null``."""
        values: list[Any] = []
        for leaf in self._leaves:
            try:
                values.append(leaf.evaluate(item, row))
            except _jq.JqError as exc:
                if self.on_field_error == "null":
                    values.append(None)
                    continue
                batch.errors.append(ItemError(index, element, leaf.field, str(exc), item))
                return None
        return values

    def _select(
        self, units: list[_Unit], batch: MappedBatch
    ) -> tuple[list[_Unit], list[list[Any] | None]]:
        """Apply the selector; return the passing units and their fused-program rows."""
        if self._selector_always:  # `query: "true"`, 97% of real resources: costs nothing
            return units, self._fused.run([item for _, _, item in units])
        if self._selector_fused:
            rows = self._fused.run([item for _, _, item in units])
        else:
            rows = [None] * len(units)
        passing: list[_Unit] = []
        passing_rows: list[list[Any] | None] = []
        for unit, row in zip(units, rows, strict=True):
            index, element, item = unit
            try:
                selected = self._selector.evaluate(item, row)
            except _jq.JqError as exc:
                message = str(exc)
                batch.errors.append(ItemError(index, element, "selector", message, item))
                continue
            if selected is True:
                passing.append(unit)
                passing_rows.append(row)
            elif selected is False:
                batch.filtered_out += 1
            else:
                message = selector_message(selected)
                batch.errors.append(ItemError(index, element, "selector", message, item))
        if not self._selector_fused:
            passing_rows = self._fused.run([item for _, _, item in passing])
        return passing, passing_rows


def _error_order(error: ItemError) -> tuple[int, int]:
    return error.index, -1 if error.element is None else error.element


def _units(items: Sequence[Any]) -> list[_Unit]:
    return [(index, None, item) for index, item in enumerate(items)]


# -- leaf evaluators -------------------------------------------------------------------------


def _constant_value(text: str) -> Any:
    return _jq.first_output(_jq.compile_expression(text, "constant"), None)


def _constant(value: Any) -> _Evaluate:
    return lambda item, row: value


def _path(getter: Callable[[Any], Any], program: Any) -> _Evaluate:
    def evaluate(item: Any, row: list[Any] | None) -> Any:
        try:
            return getter(item)
        except NeedsJq:
            return _jq.first_output(program, item)

    return evaluate


def _top_key(key: str, general: _Evaluate) -> _Evaluate:
    """``.key`` on the usual item (a dict holding a string, a small int, null): the value as
    is; anything else takes the general path (canonical form, missing keys, libjq)."""

    def evaluate(item: Any, row: list[Any] | None) -> Any:
        if type(item) is dict:
            value: Any = item.get(key)
            kind = type(value)
            if kind is str:
                if value.isascii():
                    return value
            elif value is None:
                if key in item:
                    return None
            elif kind is int and -_EXACT_INT <= value <= _EXACT_INT:
                return value
        return general(item, row)

    return evaluate


_EXACT_INT = 2**53


def _isolated(program: Any) -> _Evaluate:
    return lambda item, row: _jq.first_output(program, item)


def _fused(slot: int, program: Any) -> _Evaluate:
    def evaluate(item: Any, row: list[Any] | None) -> Any:
        # (A gated row holds only the selector's cell when the selector did not yield true.)
        if row is not None and slot < len(row):
            cell = row[slot]
            if cell is not None:  # [] (no output) or [first output]
                return cell[0] if cell else None
        # The fused program did not run for this item, or the leaf raised: ask libjq alone,
        # which yields the exact value or error message of the per-field evaluation.
        return _jq.first_output(program, item)

    return evaluate


# -- entity shape ----------------------------------------------------------------------------


def _flatten(tree: Any) -> tuple[Any, list[tuple[str, str | None]]]:
    """Replace each leaf of the mapping tree by its position in depth-first order."""
    leaves: list[tuple[str, str | None]] = []

    def walk(node: Any, where: str) -> Any:
        if isinstance(node, dict):
            return {
                key: walk(value, f"{where}.{key}" if where else key) for key, value in node.items()
            }
        if isinstance(node, list):
            return [walk(value, f"{where}[{i}]") for i, value in enumerate(node)]
        leaves.append((where, node))
        return len(leaves) - 1

    return walk(tree, ""), leaves


def _make_builder(shape: Any) -> Callable[[list[Any]], Any]:
    """A function assembling the entity from the leaf values, for this shape.

    It is one Python display expression (``{"identifier": v[0], "properties": {"email": v[3],
    ...}}``), less than half the time of nested builders; the shape's keys, strings, enter it
    as ``repr`` literals. Shapes it cannot spell (deeper than the parser nests) are built by
    recursion.
    """
    source = _display(shape, _MAX_DISPLAY_DEPTH, "v[{}]")
    if source is None:
        return _nested_builder(shape)
    code = compile(f"lambda v: {source}", "<entity builder>", "eval")
    builder: Callable[[list[Any]], Any] = eval(code, {"__builtins__": {}})
    return builder


def _make_mapper(shape: Any, evaluators: list[_Evaluate]) -> _Evaluate:
    """A function mapping one item (and its fused-program row) to the entity: the builder's
    display expression with each leaf's evaluation in place of its value
    (``{"identifier": e0(item, row), ...}``), evaluated left to right, in leaf order, like the
    list of values it spares."""
    source = _display(shape, _MAX_DISPLAY_DEPTH, "e{}(item, row)")
    if source is None:
        build = _nested_builder(shape)
        return lambda item, row: build([evaluate(item, row) for evaluate in evaluators])
    code = compile(f"lambda item, row: {source}", "<entity mapper>", "eval")
    names: dict[str, Any] = {f"e{n}": evaluate for n, evaluate in enumerate(evaluators)}
    mapper: _Evaluate = eval(code, {"__builtins__": {}, **names})
    return mapper


_MAX_DISPLAY_DEPTH = 50  # well below the parser's nesting limit


def _display(shape: Any, depth: int, leaf: str) -> str | None:
    """``shape`` as a Python expression, leaf ``n`` spelt ``leaf.format(n)``; None if it is
    too deep or has a key that is not a string."""
    if isinstance(shape, int):
        return leaf.format(shape)
    if depth == 0:
        return None
    values = shape.values() if isinstance(shape, dict) else shape
    parts = [_display(value, depth - 1, leaf) for value in values]
    if any(part is None for part in parts):
        return None
    if isinstance(shape, list):
        return f"[{', '.join(map(str, parts))}]"
    if not all(type(key) is str for key in shape):
        return None
    return "{" + ", ".join(f"{key!r}: {part}" for key, part in zip(shape, parts, strict=True)) + "}"


def _nested_builder(shape: Any) -> Callable[[list[Any]], Any]:
    if isinstance(shape, int):
        return operator.itemgetter(shape)
    if isinstance(shape, dict):
        parts = tuple((key, _nested_builder(value)) for key, value in shape.items())
        return lambda values: {key: build(values) for key, build in parts}
    builders = tuple(_nested_builder(value) for value in shape)
    return lambda values: [build(values) for build in builders]


# -- the fused program -----------------------------------------------------------------------

_PRELUDE = "def __shoal_first(f): try [first(f)] catch null;\n"
_END = "\n\n"
"""What ends an embedded leaf: a leaf may end in a ``#`` comment, and one ending in ``\\``
goes on to the next line (jq 1.7), which would swallow the next leaf's cell."""


@dataclass(slots=True)
class _FusedProgram:
    """All ``jq``-tier leaves of a resource as one program over a JSON array of inputs.

    Each output row is ``[cell, cell, ...]`` in slot order, a cell being ``[value]``, ``[]``
    (no output) or ``null`` (the leaf raised). With ``gated``, slot 0 is the selector and the
    row stops there unless it produced ``true`` (the other leaves must not run, nor cost).
    """

    program: Any = None
    input_paths: list[Callable[[Any], Any]] = field(default_factory=list)
    row_lengths: frozenset[int] = frozenset()
    """The lengths a row may have: any other means a leaf did not stay in its cell."""

    @classmethod
    def build(cls, leaves: list[_FusedLeaf], *, gated: bool) -> _FusedProgram:
        if not leaves:
            return cls()
        getters: list[Callable[[Any], Any]] = []
        texts = [leaf.text for leaf in leaves]
        splits = [leaf.split for leaf in leaves if leaf.split is not None]
        if len(splits) == len(leaves):
            # Feed libjq only the sub-trees the leaves read: [value of path0, path1, ...]. The
            # values go in raw (uncanonicalised) so that libjq sees the same number literals.
            inputs: dict[tuple[PathSegment, ...], int] = {}
            for position, (segments, rest) in enumerate(splits):
                if tuple(segments) not in inputs:
                    inputs[tuple(segments)] = len(getters)
                    getters.append(make_getter(segments, raw=True))
                texts[position] = f".[{inputs[tuple(segments)]}] | ({rest}{_END})"
        cells = [f"__shoal_first(({text}{_END}))" for text in texts]
        if gated:
            body = (
                f"{cells[0]} as $s | if $s == [true] then [$s, {', '.join(cells[1:])}] "
                "else [$s] end"
                if len(cells) > 1
                else f"[{cells[0]}]"
            )
        else:
            body = f"[{', '.join(cells)}]"
        try:
            program = _jq.compile_program(f"{_PRELUDE}.[] | {body}")
        except ValueError:
            # Some leaf does not survive being embedded (each one compiled on its own).
            # Rare enough that evaluating every leaf alone is an acceptable answer.
            return cls()
        return cls(program, getters, frozenset({1, len(cells)} if gated else {len(cells)}))

    def run(self, items: list[Any]) -> list[list[Any] | None]:
        """One row per item (``None`` where the fused program could not run for it)."""
        if self.program is None:
            return [None] * len(items)
        rows: list[list[Any] | None] = []
        for start in range(0, len(items), _CHUNK):
            rows.extend(self._run_chunk(items[start : start + _CHUNK]))
        return rows

    def _run_chunk(self, items: list[Any]) -> list[list[Any] | None]:
        inputs: list[Any] = []
        usable: list[int] = []  # positions whose input could be built
        for position, item in enumerate(items):
            if self.input_paths:
                try:
                    inputs.append([get(item) for get in self.input_paths])
                except NeedsJq:
                    continue  # the path errors on this item: its leaves run alone
            else:
                inputs.append(item)
            usable.append(position)
        texts = _json_texts(inputs)
        present = [(position, text) for position, text in zip(usable, texts, strict=True) if text]
        rows: list[list[Any] | None] = [None] * len(items)
        if not present:
            return rows
        try:
            outputs = self.program.input_text(
                "[" + ",".join(text for _, text in present) + "]"
            ).all()
        except ValueError:  # e.g. a leaf called halt_error: fall back to per-leaf runs
            return rows
        if len(outputs) != len(present):
            return rows
        for (position, _), output in zip(present, outputs, strict=True):
            if type(output) is list and len(output) in self.row_lengths:
                rows[position] = output
        return rows


def _json_texts(values: list[Any]) -> list[str | None]:
    """JSON text of each value as libjq should parse it; ``None`` when there is none."""
    try:
        return [orjson.dumps(value, option=_ORJSON_OPTIONS).decode() for value in values]
    except TypeError:
        return [_json_text(value) for value in values]


def _json_text(value: Any) -> str | None:
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        pass
    # What jq.py's input_value does (json.dumps), with Ocean's date fallback.
    for candidate in (value, _jq.jsonable(value)):
        try:
            return json.dumps(candidate)
        except (TypeError, ValueError):
            continue
    return None


# -- itemsToParse ----------------------------------------------------------------------------


class _Expander:
    """Expands each raw item into ``{**parent, <itemsToParseName>: element}`` units."""

    def __init__(
        self, resource: ResourceConfig, compile_leaf: Callable[..., _Leaf], where: str
    ) -> None:
        port = resource.port
        self._name = port.items_to_parse_name
        # Evaluated once per parent, on the parent: never part of the per-unit fused program.
        self._elements = compile_leaf("itemsToParse", port.items_to_parse, fusable=False)
        self._delete: _Evaluate | None = None
        if port.items_to_parse is not None and port.items_to_parse_top_level_transform:
            path = _jq.deletion_path(port.items_to_parse)
            if path is None:
                raise ConfigError(
                    f"{where} itemsToParse: cannot tell which key of the item holds the "
                    "array; set itemsToParseTopLevelTransform: false"
                )
            program = _jq.compile_expression(
                f". | del({path})", f"{where} itemsToParseTopLevelTransform"
            )
            segments = parse_path(path)
            deleter = make_deleter(segments) if segments is not None else None
            self._delete = _path(deleter, program) if deleter else _isolated(program)

    def expand(self, items: Sequence[Any], batch: MappedBatch) -> list[_Unit]:
        units: list[_Unit] = []
        for index, raw in enumerate(items):
            try:
                elements = self._elements.evaluate(raw, None)
            except _jq.JqError as exc:
                message = str(exc)
                batch.errors.append(ItemError(index, None, "itemsToParse", message, raw))
                continue
            if elements is None or elements == []:
                continue
            if not isinstance(elements, list):
                message = not_a_list_message(elements)
                batch.errors.append(ItemError(index, None, "itemsToParse", message, raw))
                continue
            parent = raw
            if self._delete is not None:
                try:
                    parent = self._delete(raw, None)
                except _jq.JqError as exc:
                    name = "itemsToParseTopLevelTransform"
                    message = str(exc)
                    batch.errors.append(ItemError(index, None, name, message, raw))
                    continue
            if not isinstance(parent, dict):
                batch.errors.append(
                    ItemError(index, None, "itemsToParse", NOT_AN_OBJECT_MESSAGE, raw)
                )
                continue
            name = self._name
            units.extend(
                (index, position, {**parent, name: element})
                for position, element in enumerate(elements)
            )
        return units
