"""Outcomes of bulk writes: which entities the catalog stored, refused or deleted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["UNKNOWN_IDENTIFIER", "DeleteResult", "EntityError", "UpsertResult", "UpsertedEntity"]

UNKNOWN_IDENTIFIER = "unknown"
"""The identifier Port reports for an entity whose search identifier matched no entity."""


@dataclass(frozen=True, slots=True)
class UpsertedEntity:
    """One entity the catalog stored."""

    index: int
    """Position in the list passed to ``upsert_entities``."""
    identifier: str
    """The identifier as the catalog resolved it (search identifiers become real ones)."""
    created: bool | None = None
    """True if new, False if updated, None if the catalog did not say."""
    unchanged: bool = False
    """True when the catalog already held exactly this content and skipped the write (Shoal)."""


@dataclass(frozen=True, slots=True)
class EntityError:
    """One entity the catalog refused (or did not report on)."""

    index: int
    """Position in the list passed to ``upsert_entities``."""
    identifier: str | None
    """The identifier the catalog reported, ``"unknown"`` for an unresolved search identifier,
    or None when the entity's identifier was a search query and the catalog named none."""
    message: str
    status: int | None = None
    """The per-entity HTTP status the catalog reported, if any."""
    code: str | None = None
    """The catalog's error code (``not_found``, ``invalid_request``...), if any."""

    @property
    def unresolved(self) -> bool:
        """True if the entity's search identifier did not resolve to exactly one entity.

        Ocean drops such entities silently; callers may count them apart from real failures.
        """
        return self.identifier == UNKNOWN_IDENTIFIER


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """Everything ``upsert_entities`` learned, ordered by input index.

    Each input entity appears exactly once: in ``entities`` or in ``errors``.
    """

    entities: tuple[UpsertedEntity, ...] = ()
    errors: tuple[EntityError, ...] = ()

    @property
    def upserted(self) -> list[str]:
        """Resolved identifiers of the stored entities, in input order."""
        return [entity.identifier for entity in self.entities]

    @property
    def created(self) -> list[str]:
        """Identifiers of the entities the catalog reported as newly created."""
        return [entity.identifier for entity in self.entities if entity.created]

    @property
    def ok(self) -> bool:
        """True if no entity was refused."""
        return not self.errors

    @classmethod
    def combine(cls, parts: Iterable[UpsertResult]) -> UpsertResult:
        """Merge the results of several batches into one, ordered by input index."""
        entities: list[UpsertedEntity] = []
        errors: list[EntityError] = []
        for part in parts:
            entities.extend(part.entities)
            errors.extend(part.errors)
        entities.sort(key=lambda entity: entity.index)
        errors.sort(key=lambda error: error.index)
        return cls(tuple(entities), tuple(errors))


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What ``delete_entities`` deleted."""

    deleted: tuple[str, ...] = ()
    """The identifiers asked for that the catalog deleted (absent: it did not know them)."""
    dependents: tuple[tuple[str, str], ...] = ()
    """``(blueprint, identifier)`` of the entities deleted with them because they related to
    them (``delete_dependents``), as a Shoal catalog reports them; Port does not."""

    @classmethod
    def combine(cls, parts: Iterable[DeleteResult]) -> DeleteResult:
        parts = list(parts)
        return cls(
            tuple(identifier for part in parts for identifier in part.deleted),
            tuple(key for part in parts for key in part.dependents),
        )
