"""The mapping config (Port's "port-app-config"): pydantic models and parsing.

The format is Port Ocean's, so an unmodified Ocean config works here::

    deleteDependentEntities: true          # default true
    createMissingRelatedEntities: true     # default true
    enableMergeEntity: true                # default true
    entityDeletionThreshold: 0.9           # 0..1, default 0.9
    resources:
      - kind: repository
        selector: {query: "true", ...}     # query defaults to "true"; extra keys are the
        port:                              # integration's own (e.g. ``includedFiles``)
          itemsToParse: .files             # optional: one entity per array element
          itemsToParseName: item           # the element is merged into the parent as .item
          itemsToParseTopLevelTransform: true
          entity:
            mappings:
              identifier: .name            # jq, or a search query (see SearchQuery)
              title: .name
              blueprint: '"githubRepository"'
              icon: '"Github"'
              team: .owner.team            # jq, or a search query
              properties: {url: .html_url}
              relations: {org: .owner.login}   # jq, or a search query

Every leaf is a jq program evaluated against one raw item. Unknown keys are accepted and
kept (integrations extend the selector; other tools add their own keys), so
``parse_mapping_config(c.to_json()) == c``. This module only checks the *shape*; jq syntax is
checked when a resource is compiled (:func:`shoal.sync.mapping.compile_resource`).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

from shoal.errors import ConfigError
from shoal.types import JSONObject

__all__ = [
    "EntityConfig",
    "EntityMappings",
    "JqExpression",
    "MappingConfig",
    "PortResourceConfig",
    "ResourceConfig",
    "Rule",
    "SearchQuery",
    "Selector",
    "parse_mapping_config",
]


def _coerce_expression(value: Any) -> Any:
    # YAML turns `query: true` or `properties: {n: 1}` into a bool / a number. In jq those
    # literals mean the same value, so accept them spelled as jq (Ocean's pydantic v1 would
    # have produced "True", which is not valid jq).
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return value


JqExpression: TypeAlias = Annotated[str, BeforeValidator(_coerce_expression)]
"""A jq program, evaluated against one raw item; its first output is the value."""


class _Model(BaseModel):
    # Unknown keys are kept (not rejected, not dropped): integrations extend these models and
    # configs written for newer Ocean versions must survive a round trip through Shoal.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Rule(_Model):
    """One rule of a search query; each of the three values is a jq program."""

    property: JqExpression
    operator: JqExpression
    value: JqExpression


def _rule_or_query(value: Any) -> str:
    if isinstance(value, SearchQuery) or (isinstance(value, dict) and "combinator" in value):
        return "query"
    return "rule"


class SearchQuery(_Model):
    """A search query, used instead of a jq program for identifier, team or a relation.

    Evaluating it evaluates every leaf (``combinator``, each rule's ``property``,
    ``operator`` and ``value``) as jq against the item, Ocean's semantics: the usual spelling is
    ``combinator: '"and"'``, ``property: '"$identifier"'``, ``operator: '"="'``,
    ``value: .team``. The resulting object is handed to the catalog, which resolves it. The bare
    words ``and`` / ``or`` (not valid jq) are accepted as literal combinators.
    """

    combinator: JqExpression
    rules: list[
        Annotated[
            Annotated[Rule, Tag("rule")] | Annotated[SearchQuery, Tag("query")],
            Discriminator(_rule_or_query),
        ]
    ]


def _expression_or_query(value: Any) -> str:
    if isinstance(value, SearchQuery | dict):
        return "search query"
    return "jq"


JqOrSearchQuery: TypeAlias = Annotated[
    Annotated[JqExpression, Tag("jq")] | Annotated[SearchQuery, Tag("search query")],
    Discriminator(_expression_or_query),
]


class EntityMappings(_Model):
    """How one item becomes one entity. Only the keys given in the config are mapped."""

    # Field order is Ocean's (EntityMapping): it fixes the order in which leaves are evaluated
    # and therefore which error is reported first.
    identifier: JqOrSearchQuery
    title: JqExpression | None = None
    icon: JqExpression | None = None
    blueprint: JqExpression
    team: JqOrSearchQuery | None = None
    properties: dict[str, JqExpression] = Field(default_factory=dict)
    relations: dict[str, JqOrSearchQuery] = Field(default_factory=dict)

    def leaf_tree(self) -> JSONObject:
        """The mapping as Ocean evaluates it: ``mappings.dict(exclude_unset=True)``.

        Keys the config did not set are absent; unknown (extra) keys are dropped; search
        queries become plain dicts/lists whose string leaves are jq programs; an explicit
        ``null`` (``title: null``) stays ``None``. Both mapping engines walk this tree.
        """
        return _declared_fields(self)


def _declared_fields(model: BaseModel) -> JSONObject:
    tree: JSONObject = {}
    for name, field in type(model).model_fields.items():
        if name not in model.model_fields_set:
            continue
        key = field.alias or name
        tree[key] = _tree_value(getattr(model, name))
    return tree


def _tree_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _declared_fields(value)
    if isinstance(value, dict):
        return {key: _tree_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tree_value(item) for item in value]
    return value


class EntityConfig(_Model):
    """``port.entity``: holds the mappings."""

    mappings: EntityMappings


class Selector(_Model):
    """Which items of the kind become entities. Extra keys belong to the integration."""

    query: JqExpression = "true"


class PortResourceConfig(_Model):
    """``port``: the entity mappings and the optional ``itemsToParse`` expansion."""

    entity: EntityConfig
    items_to_parse: JqExpression | None = Field(default=None, alias="itemsToParse")
    items_to_parse_name: str = Field(default="item", alias="itemsToParseName", min_length=1)
    items_to_parse_top_level_transform: bool = Field(
        default=True, alias="itemsToParseTopLevelTransform"
    )


class ResourceConfig(_Model):
    """One ``resources[]`` entry: a kind, a selector and how its items map to entities."""

    kind: str = Field(min_length=1)
    selector: Selector = Field(default_factory=Selector)
    port: PortResourceConfig


class MappingConfig(_Model):
    """The whole mapping config of an integration."""

    resources: list[ResourceConfig] = Field(default_factory=list)
    delete_dependent_entities: bool = Field(default=True, alias="deleteDependentEntities")
    create_missing_related_entities: bool = Field(
        default=True, alias="createMissingRelatedEntities"
    )
    enable_merge_entity: bool = Field(default=True, alias="enableMergeEntity")
    entity_deletion_threshold: float = Field(
        default=0.9, alias="entityDeletionThreshold", ge=0.0, le=1.0
    )

    def to_json(self) -> JSONObject:
        """The config as a JSON object with Port's key names.

        Only keys present in the parsed document are written (defaults stay implicit) and
        unknown keys are kept, so ``parse_mapping_config(config.to_json()) == config``.
        """
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def ignored_keys(self) -> list[str]:
        """Dotted paths of unknown keys that the mapper does not use.

        Unknown keys on the top level and in ``selector`` are expected (integrations add
        their own options there) and are not listed. Anything else is most likely a typo or a
        block at the wrong level (Ocean silently ignores those); callers may warn about them.
        """
        found: list[str] = []
        for index, resource in enumerate(self.resources):
            _collect_extras(resource, f"resources[{index}]", found)
        return found


def _collect_extras(model: BaseModel, where: str, found: list[str]) -> None:
    if not isinstance(model, Selector):
        found.extend(f"{where}.{key}" for key in model.model_extra or {})
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = field.alias or name
        children: list[tuple[str, Any]]
        if isinstance(value, dict):
            children = [(f"{where}.{key}.{k}", v) for k, v in value.items()]
        elif isinstance(value, list):
            children = [(f"{where}.{key}[{i}]", v) for i, v in enumerate(value)]
        else:
            children = [(f"{where}.{key}", value)]
        for child_where, child in children:
            if isinstance(child, BaseModel):
                _collect_extras(child, child_where, found)


def parse_mapping_config(data: Any) -> MappingConfig:
    """Validate a mapping config document (the parsed YAML/JSON object).

    Raises :class:`~shoal.errors.ConfigError` with a one-line message naming every offending
    location (``resources[0].port.entity.mappings.identifier: Field required``) when the
    document does not have the expected shape. jq syntax is not checked here.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"invalid mapping config: expected a JSON object, got {type(data).__name__}"
        )
    try:
        return MappingConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid mapping config: {_summarise(exc)}") from None


_UNION_TAGS = frozenset({"jq", "search query", "rule", "query"})
_MAX_REPORTED_ERRORS = 5


def _summarise(exc: ValidationError) -> str:
    messages: list[str] = []
    for error in exc.errors(include_url=False):
        where = _format_location(error["loc"])
        messages.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    shown = "; ".join(messages[:_MAX_REPORTED_ERRORS])
    hidden = len(messages) - _MAX_REPORTED_ERRORS
    return f"{shown}; and {hidden} more" if hidden > 0 else shown


def _format_location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for position, element in enumerate(loc):
        if isinstance(element, int):
            parts.append(f"[{element}]")
        elif not _is_union_tag(loc, position):
            parts.append(f".{element}" if parts else element)
    return "".join(parts)


def _is_union_tag(loc: tuple[int | str, ...], position: int) -> bool:
    # pydantic puts the union member it tried (our Tag) into the location; users never wrote
    # it, so it is left out. Tags follow `identifier`, `team`, `relations.<name>`, `rules[i]`.
    if loc[position] not in _UNION_TAGS or position == 0:
        return False
    if loc[position - 1] in ("identifier", "team"):
        return True
    return position >= 2 and loc[position - 2] in ("relations", "rules")
