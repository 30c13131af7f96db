"""One resync: kinds in config order → batches → map → load, then the delete phase.

No transport or scheduling here: the supervisor starts a :class:`Resync` as a task and aborts it
by cancelling that task. Cancellation is never caught: an aborted run stops at its next await,
runs no further kind and no delete phase, and the supervisor records it as aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ParamSpec, TypeVar

import orjson

from shoal.concurrency import both
from shoal.content_digest import json_digest, may_repeat
from shoal.errors import (
    CatalogError,
    CatalogUnavailableError,
    LoadError,
    ShoalError,
    SourceError,
)
from shoal.sync.catalog_client import CatalogClient, UpsertedEntity, UpsertResult
from shoal.sync.integration import Integration, RawBatch
from shoal.sync.mapping import MappedBatch, MappingConfig, ResourceConfig, compile_resource
from shoal.sync.run_record import KindProgress, KindStatus, RunRecord, RunStatus
from shoal.sync.seen import SeenKeys
from shoal.sync.unchanged import SEARCH_CHUNK, include_paths, is_unchanged, search_query
from shoal.types import JSONObject

__all__ = ["DigestProbe", "KindError", "Resync", "ResyncOptions", "plan_deletions"]

log = logging.getLogger("shoal.sync")

PIPELINE_DEPTH = 2
"""Raw pages fetched ahead of mapping/loading: overlap without unbounded memory."""

LOAD_DEPTH = 2
"""Pages whose upserts are in flight at once. With two, the next page's request is read and
parsed by the catalog while the previous one writes, and waits there to be written next."""

MAP_SLICE = 50
"""Items mapped and serialised between two turns of the event loop (pages load meanwhile)."""


class KindError(ShoalError):
    """Raised inside a kind to stop it; the run records it and moves on to the next kind."""


@dataclass(frozen=True, slots=True)
class ResyncOptions:
    progress_interval: float = 1.0
    """Seconds between run-record reports (they double as the heartbeat)."""
    compare_before_write: bool = False
    """Read current entities and send only changed ones (for catalogs that rewrite every
    upsert, such as Port; Shoal's catalog skips unchanged writes itself)."""
    confirm_by_digest: bool = False
    """Ask a Shoal catalog which entities are unchanged by digest and send only the others
    in full (see :meth:`CatalogClient.confirm_unchanged`); ignored with compare_before_write."""

    @property
    def asks_by_digest(self) -> bool:
        return self.confirm_by_digest and not self.compare_before_write


@dataclass(slots=True)
class _Group:
    """The entities of one blueprint in a page, with their JSON and digests once computed."""

    entities: list[JSONObject]
    parts: list[bytes] | None
    digests: list[str | None] | None
    confirming: asyncio.Task[frozenset[int] | Exception | None] | None = None
    """The question about these entities' digests, asked before the page's load (see
    :meth:`Resync._confirm_ahead`); None if it was not asked ahead."""


@dataclass(frozen=True, slots=True)
class _Upserted:
    """A group's upsert, answered: the positions the catalog confirmed unchanged by digest
    (nothing was sent for them) and the result of sending the others (indexed by position)."""

    confirmed: Sequence[int]
    result: UpsertResult


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A page's upserts, answered: per blueprint group, the catalog's answer."""

    groups: dict[str, _Group]
    answers: list[_Upserted]
    refused: int


class DigestProbe:
    """When asking about digests pays: while nearly all entities turn out unchanged.

    Asking costs a round trip before the upsert of what is left, so it pays only when little is
    left: measured end to end (bench/RESULTS.md), asking first was 1.09x as fast when every
    entity was unchanged but 0.88x when ~15% had changed. A load below :attr:`WORTH` makes the
    next ones skip the question, for 1, 2, 4 ... up to 16 loads, then ask again; a catalog that
    does not know the question is never asked again. While backing off, one question at a time
    probes: the loads that start while it is unanswered do not ask too.
    """

    WORTH = 0.95  # ask while at least this share of the entities asked about is unchanged
    MAX_SKIP = 16

    def __init__(self) -> None:
        self.supported = True
        self._skip = 0
        self._pause = 0
        self._unanswered = 0

    def ask(self) -> bool:
        """Whether this load asks; if it does, it reports :meth:`answered` or :meth:`withdrawn`."""
        if not self.supported:
            return False
        if self._pause > 0:
            self._pause -= 1
            return False
        if self._skip and self._unanswered:
            return False  # the question in flight is the probe
        self._unanswered += 1
        return True

    def withdrawn(self) -> None:
        """A question that got no answer (the catalog failed, or the run stopped)."""
        self._unanswered = max(0, self._unanswered - 1)

    def answered(self, unchanged: int, asked: int) -> None:
        self.withdrawn()
        if asked and unchanged >= self.WORTH * asked:
            self._skip = 0
        else:
            self._skip = min(max(1, 2 * self._skip), self.MAX_SKIP)
            self._pause = self._skip


class Resync:
    """One run over all resources of the mapping config."""

    def __init__(
        self,
        *,
        record: RunRecord,
        integration: Integration,
        client: CatalogClient,
        config: MappingConfig,
        options: ResyncOptions | None = None,
        on_progress: Callable[[RunRecord], None] | None = None,
    ) -> None:
        self.record = record
        self._integration = integration
        self._client = client
        self._config = config
        self._options = options or ResyncOptions()
        self._seen = SeenKeys()
        self._related: dict[tuple[str, str], set[str]] = {}
        """(blueprint, relation) → the targets kept entities point at (see _protect_related)."""
        self._blueprint_bodies: dict[str, JSONObject] = {}
        self._loading = -1
        """Position in the config of the kind being loaded."""
        self._on_progress = on_progress
        self._probes: dict[str, DigestProbe] = {}
        self._group: asyncio.TaskGroup | None = None

    async def run(self) -> RunRecord:
        """Run to the end and return the record (completed or failed).

        Raises CancelledError when aborted; the caller records the abort.
        """
        record = self.record
        record.kinds = [KindProgress(r.kind, i) for i, r in enumerate(self._config.resources)]
        async with asyncio.TaskGroup() as group:
            self._group = group
            reporter = group.create_task(self._report_progress(), name=f"{record.id}-progress")
            try:
                prefetches = self._prefetches(group)
                for prefetch, progress in zip(prefetches, record.kinds, strict=True):
                    await self._run_kind(prefetch, progress)
                try:
                    await self._delete_phase()
                except (CatalogError, CatalogUnavailableError, LoadError) as exc:
                    record.error = f"delete phase failed: {exc}"
                    record.delete_phase.status = "failed"
                    record.delete_phase.reason = str(exc)
            finally:
                reporter.cancel()
        record.finish(
            RunStatus.FAILED if record.failed_kinds or record.error else RunStatus.COMPLETED
        )
        return record

    async def _report_progress(self) -> None:
        while True:
            await asyncio.sleep(self._options.progress_interval)
            try:
                await self._client.report_run(self.record.integration, self.record.to_json())
            except (CatalogError, CatalogUnavailableError) as exc:
                log.warning("could not report progress of %s: %s", self.record.id, exc)

    # --- one kind ------------------------------------------------------------------------------

    def _prefetches(self, group: asyncio.TaskGroup) -> list[_Prefetch]:
        """One prefetch per resource, in config order, each starting the next one's when its
        handler is exhausted: the next kind's first pages are fetched and mapped while this
        kind's last pages load (handlers still run one after another)."""
        prefetches: list[_Prefetch] = []
        following: _Prefetch | None = None
        resources = self._config.resources
        for position in reversed(range(len(resources))):
            resource, earlier = resources[position], resources[:position]
            ahead = _blueprints_of_no_earlier_kind(resource, earlier)
            opener = self._opener(position, resource, ahead)
            following = _Prefetch(group, resource.kind, opener, following)
            prefetches.append(following)
        return prefetches[::-1]

    def _opener(
        self, position: int, resource: ResourceConfig, ahead: frozenset[str]
    ) -> Callable[[], tuple[AsyncIterator[RawBatch], _Preparer]]:
        """What the prefetch of the kind at ``position`` opens: the handler's pages and how to
        prepare each. If its first page is ready while an earlier kind loads, the entities of
        the ``ahead`` blueprints in it are confirmed by digest then (:meth:`_confirm_ahead`)."""

        def open_kind() -> tuple[AsyncIterator[RawBatch], _Preparer]:
            if not self._integration.has_kind(resource.kind):
                message = f"the integration has no handler for kind {resource.kind!r}"
                raise KindError(message)
            compiled = compile_resource(resource)
            first = True

            async def prepare(batch: RawBatch) -> _Page:
                """Map the page and group its entities, in slices with a turn of the event loop
                before each, so that the pages loading meanwhile send their requests and read
                their answers on time, and an abort is not kept waiting."""
                nonlocal first
                page = _Page(len(batch))
                try:
                    for start in range(0, len(batch), MAP_SLICE):
                        await asyncio.sleep(0)
                        part = compiled.map_batch(batch[start : start + MAP_SLICE])
                        page.mapped.entities.extend(part.entities)
                        page.mapped.filtered_out += part.filtered_out
                        page.mapped.errors.extend(
                            replace(error, index=error.index + start) for error in part.errors
                        )
                        self._group_by_blueprint(part.entities, page.groups)
                    if first:
                        first = False
                        if self._loading < position and not page.mapped.errors:
                            self._confirm_ahead(page, ahead)
                except Exception as exc:  # noqa: BLE001 - raised by the kind, after its loads
                    return _Page(len(batch), error=exc)
                return page

            return self._integration.fetch(resource.kind), prepare

        return open_kind

    async def _run_kind(self, prefetch: _Prefetch, progress: KindProgress) -> None:
        self._loading = progress.index
        progress.status = KindStatus.RUNNING
        self._notify()
        loads: deque[asyncio.Task[_Loaded | Exception]] = deque()
        assert self._group is not None
        try:
            async with prefetch as pages:
                async for page in pages:
                    # Pages are mapped ahead while pages N-1 and N load: the next upsert already
                    # waits at the catalog when one ends, so the catalog never waits for us.
                    progress.fetched += page.size
                    if page.error is not None:
                        await self._drain(loads, progress)  # the pages before it first
                        raise page.error
                    mapped = page.mapped
                    if mapped.errors:
                        await self._drain(loads, progress)
                    self._account(mapped, progress)
                    while len(loads) >= LOAD_DEPTH:
                        await self._settle_oldest(loads, progress)
                    # in the run's task group; its error is handed over, not raised there
                    loads.append(self._group.create_task(_outcome(self._load, page.groups)))
                    self._notify()
                await self._drain(loads, progress)
        except KindError as exc:
            self._fail_kind(progress, str(exc))
        except (LoadError, CatalogError, CatalogUnavailableError) as exc:
            self._fail_kind(
                progress, f"the catalog refused entities of kind {progress.kind!r}: {exc}"
            )
        except Exception as exc:
            log.exception("kind %s of %s failed", progress.kind, self.record.integration)
            self._fail_kind(progress, f"{type(exc).__name__}: {exc}")
        else:
            progress.status = KindStatus.COMPLETED
        finally:
            pending = [load for load in loads if not load.done()]
            for load in pending:  # aborted: stop writing now
                load.cancel()
            if pending:
                await asyncio.wait(pending)
        self._notify()

    async def _settle_oldest(
        self, loads: deque[asyncio.Task[_Loaded | Exception]], progress: KindProgress
    ) -> None:
        """Wait for the oldest load in flight and settle it. If the catalog refused it, the
        kind stops: the loads sent after it are still awaited and counted, then it raises."""
        outcome = await loads[0]
        loads.popleft()
        try:
            self._settle(_result(outcome), progress)
        except Exception:
            with contextlib.suppress(Exception):
                await self._drain(loads, progress)
            raise

    async def _drain(
        self, loads: deque[asyncio.Task[_Loaded | Exception]], progress: KindProgress
    ) -> None:
        """Settle every load in flight, oldest first; raise the first one's error, if any."""
        while loads:
            await self._settle_oldest(loads, progress)

    def _fail_kind(self, progress: KindProgress, message: str) -> None:
        progress.status = KindStatus.FAILED
        progress.record_error(message)
        log.warning("kind %s stopped: %s", progress.kind, message)

    def _account(self, mapped: MappedBatch, progress: KindProgress) -> None:
        progress.filtered_out += mapped.filtered_out
        if mapped.errors:
            progress.failed += len(mapped.errors)
            for error in mapped.errors:
                progress.record_error(f"mapping {error.field}: {error.message}", error.preview)
            first = mapped.errors[0]
            message = f"{len(mapped.errors)} item(s) could not be mapped, e.g. {first}"
            raise KindError(message)
        progress.mapped += len(mapped.entities)

    def _group_by_blueprint(self, entities: list[JSONObject], groups: dict[str, _Group]) -> None:
        """Add ``entities`` to a page's ``groups`` per blueprint, serialised (and digested) ahead
        of their load."""
        digests = self._options.asks_by_digest
        for entity in entities:
            group = groups.get(entity["blueprint"])
            if group is None:
                group = groups[entity["blueprint"]] = _Group([], [], [] if digests else None)
            group.entities.append(entity)
            if group.parts is not None:
                try:
                    part = orjson.dumps(entity)
                except TypeError:  # upsert_entities serialises again and reports it
                    group.parts = group.digests = None
                    continue
                group.parts.append(part)
                if group.digests is not None:
                    group.digests.append(json_digest(part) if may_repeat(entity) else None)

    async def _load(self, groups: dict[str, _Group]) -> _Loaded:
        # every blueprint's upsert finishes (or fails) before the kind moves on: none keeps
        # writing in the background after another failed
        outcomes = await asyncio.gather(
            *(self._upsert(blueprint, group) for blueprint, group in groups.items()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        answers = [outcome for outcome in outcomes if isinstance(outcome, _Upserted)]
        return _Loaded(groups, answers, sum(len(answer.result.errors) for answer in answers))

    def _settle(self, loaded: _Loaded, progress: KindProgress) -> None:
        """Count what a load stored and remember it for the delete phase; raise KindError
        if the catalog refused any of it."""
        for (blueprint, group), answer in zip(loaded.groups.items(), loaded.answers, strict=True):
            entities, confirmed, result = group.entities, answer.confirmed, answer.result
            self._seen.add(blueprint, (entities[index]["identifier"] for index in confirmed))
            self._seen.add(blueprint, (e.identifier for e in result.entities))
            unchanged = sum(1 for e in result.entities if e.unchanged)
            progress.unchanged += len(confirmed) + unchanged
            progress.upserted += len(result.entities) - unchanged
            for error in result.errors:
                progress.record_error(error.message, _entity_preview(entities[error.index]))
            self._protect_related(blueprint, entities, confirmed)
            self._protect_related(blueprint, entities, [e.index for e in result.entities])
        if loaded.refused:
            refused = loaded.refused
            progress.failed += refused
            message = f"the catalog refused {refused} entit{'y' if refused == 1 else 'ies'}"
            raise KindError(message)

    async def _upsert(self, blueprint: str, group: _Group) -> _Upserted:
        entities = group.entities
        unchanged: list[UpsertedEntity] = []
        confirmed: frozenset[int] | None = None
        positions = list(range(len(entities)))
        probe = self._probes.setdefault(blueprint, DigestProbe())
        if self._options.compare_before_write:
            current = await self._current_entities(blueprint, entities)
            positions = []
            for index, entity in enumerate(entities):
                identifier = entity.get("identifier")
                if isinstance(identifier, str) and is_unchanged(
                    entity, current.get(identifier), merge=self._config.enable_merge_entity
                ):
                    unchanged.append(UpsertedEntity(index, identifier, False, unchanged=True))
                else:
                    positions.append(index)
        elif self._options.confirm_by_digest:
            if group.confirming is not None:
                confirmed = _result(await group.confirming)
            elif probe.ask():
                confirmed = await self._confirm(blueprint, group, probe)
            if confirmed:
                positions = [index for index in positions if index not in confirmed]
        parts = group.parts
        written = await self._client.upsert_entities(
            blueprint,
            [entities[position] for position in positions],
            parts=None if parts is None else [parts[position] for position in positions],
            merge=self._config.enable_merge_entity,
            create_missing_related_entities=self._config.create_missing_related_entities,
            run_id=self.record.id,
        )
        if len(positions) < len(entities):  # indexed by position among those sent
            written = UpsertResult(
                tuple(replace(e, index=positions[e.index]) for e in written.entities),
                tuple(replace(e, index=positions[e.index]) for e in written.errors),
            )
        if unchanged:
            written = UpsertResult.combine([UpsertResult(tuple(unchanged)), written])
        return _Upserted(sorted(confirmed or ()), written)

    async def _confirm(
        self, blueprint: str, group: _Group, probe: DigestProbe
    ) -> frozenset[int] | None:
        """Ask the catalog which of ``group``'s entities are unchanged (it stamps those as
        written); None if it does not know the question."""
        try:
            confirmed = await self._client.confirm_unchanged(
                blueprint,
                group.entities,
                merge=self._config.enable_merge_entity,
                create_missing_related_entities=self._config.create_missing_related_entities,
                run_id=self.record.id,
                digests=group.digests,
            )
        except BaseException:
            probe.withdrawn()
            raise
        if confirmed is None:
            probe.supported = False
            probe.withdrawn()
        else:
            probe.answered(len(confirmed), len(group.entities))
        return confirmed

    def _confirm_ahead(self, page: _Page, ahead: frozenset[str]) -> None:
        """Ask about a kind's first page by digest as soon as it is mapped, while the kinds
        before it still load, in a task of the run: a resync that finds most entities unchanged
        then waits for these questions side by side, not one kind after another. The page's
        load takes the answer (:meth:`_upsert`).

        The catalog stamps what it confirms, so this is done only for blueprints that no earlier
        kind writes (``ahead``): an entity two kinds write gets their writes in config order.
        """
        if not self._options.asks_by_digest:
            return
        assert self._group is not None
        for blueprint, group in page.groups.items():
            if blueprint not in ahead:
                continue
            probe = self._probes.setdefault(blueprint, DigestProbe())
            if probe.ask():
                group.confirming = self._group.create_task(
                    _outcome(self._confirm, blueprint, group, probe),
                    name=f"{self.record.id}-confirm-{blueprint}",
                )

    async def _current_entities(
        self, blueprint: str, entities: list[JSONObject]
    ) -> dict[str, JSONObject]:
        identifiers = [e["identifier"] for e in entities if isinstance(e.get("identifier"), str)]
        include = include_paths(entities, merge=self._config.enable_merge_entity)
        current: dict[str, JSONObject] = {}
        for start in range(0, len(identifiers), SEARCH_CHUNK):
            chunk = identifiers[start : start + SEARCH_CHUNK]
            query = search_query(blueprint, chunk, self._client.datasource)
            for entity in await self._client.search_entities(query, include):
                current[entity["identifier"]] = entity
        return current

    def _protect_related(
        self, blueprint: str, entities: list[JSONObject], kept: Iterable[int]
    ) -> None:
        """The relation targets of kept entities (at positions ``kept``) are never deleted:
        they may have been created for them (``createMissingRelatedEntities``), and deleting
        one would delete (``deleteDependentEntities``) or change (its relation cleared) an
        entity this run has just seen. Runs for every entity of a resync: kept lean."""
        related = self._related
        for index in kept:
            relations = entities[index].get("relations")
            if not isinstance(relations, dict):
                continue
            for name, value in relations.items():
                targets = related.get((blueprint, name))
                if targets is None:
                    targets = related[(blueprint, name)] = set()
                if isinstance(value, str):
                    targets.add(value)
                elif isinstance(value, list):
                    targets.update([target for target in value if isinstance(target, str)])

    def _notify(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.record)

    # --- the delete phase ------------------------------------------------------------------------

    async def _delete_phase(self) -> None:
        phase = self.record.delete_phase
        failed = self.record.failed_kinds
        if failed:
            phase.status = "skipped"
            names = ", ".join(f"{k.kind} (#{k.index})" for k in failed)
            phase.reason = f"kind(s) failed: {names}; nothing is deleted after an incomplete resync"
            return
        phase.status = "running"
        self._notify()
        # Every entity this run wrote or confirmed was stamped after the run started, so only
        # the owned entities last updated before that are listed: the stale candidates, not
        # the million that were just seen. (A clock difference between integration and
        # catalog lists some seen ones too, which are skipped here, or leaves an entity
        # stamped by someone else meanwhile for the next run: never one deletion too many.)
        # The blueprints of the relations that protect entities are read meanwhile.
        unseen, related_blueprints = await both(self._unseen(), self._relation_targets_by_name())
        seen = self._seen
        owned = len(seen) + len(unseen)  # what this run saw is owned by it: it just wrote it
        protected = {
            (related_blueprints[relation], identifier)
            for relation, identifiers in self._related.items()
            if relation in related_blueprints
            for identifier in identifiers
        }
        plan = plan_deletions(
            unseen, seen, protected, self._config.entity_deletion_threshold, total=owned
        )
        phase.owned, phase.stale = owned, len(plan.stale)
        if plan.blocked_reason is not None:
            phase.status, phase.reason = "blocked", plan.blocked_reason
            log.warning("delete phase of %s blocked: %s", self.record.id, plan.blocked_reason)
            return
        await self._delete(plan.stale)
        phase.status = "done"

    async def _unseen(self) -> list[tuple[str, str]]:
        """The owned entities this run did not see: (blueprint, identifier) in catalog order."""
        unseen: list[tuple[str, str]] = []
        seen = self._seen
        async for page in self._client.iter_datasource_entities(
            self._client.datasource_prefix,
            self._client.datasource_suffix,
            before=self.record.started_at,
        ):
            for entity in page:
                key = (entity["blueprint"], entity["identifier"])
                if key not in seen:
                    unseen.append(key)
        return unseen

    async def _relation_targets_by_name(self) -> dict[tuple[str, str], str]:
        """(blueprint, relation) → target blueprint, over the blueprints this run wrote."""
        targets: dict[tuple[str, str], str] = {}
        bodies = await self._blueprints({blueprint for blueprint, _ in self._related})
        for blueprint, body in bodies.items():
            for name, relation in (body.get("relations") or {}).items():
                targets[(blueprint, name)] = relation["target"]
        return targets

    async def _blueprints(self, identifiers: Iterable[str]) -> dict[str, JSONObject]:
        """The catalog's blueprints (``{}`` for one that does not exist), read at most once
        per delete phase, and those not read yet all at once."""
        wanted = sorted(set(identifiers))
        missing = [bp for bp in wanted if bp not in self._blueprint_bodies]
        if missing:
            bodies = await self._client.get_blueprints(missing)
            self._blueprint_bodies.update((bp, body or {}) for bp, body in bodies.items())
        return {bp: self._blueprint_bodies[bp] for bp in wanted}

    async def _delete(self, stale: list[tuple[str, str]]) -> None:
        """Delete ``stale``, one blueprint after another, counting each request's deletions as
        it is answered: a phase cut short says what it deleted."""
        by_blueprint: dict[str, list[str]] = {}
        for blueprint, identifier in stale:
            by_blueprint.setdefault(blueprint, []).append(identifier)
        dependents = self._config.delete_dependent_entities
        order = (
            await self._deletion_order(list(by_blueprint)) if not dependents else list(by_blueprint)
        )
        for blueprint in order:
            result = await self._client.delete_entities(
                blueprint,
                by_blueprint[blueprint],
                delete_dependents=dependents,
                run_id=self.record.id,
            )
            self.record.delete_phase.deleted += len(result.deleted) + len(result.dependents)
            self._count_deleted(blueprint, len(result.deleted))
            for dependent_blueprint, count in Counter(bp for bp, _ in result.dependents).items():
                self._count_deleted(dependent_blueprint, count)
            self._notify()

    async def _deletion_order(self, blueprints: list[str]) -> list[str]:
        """Blueprints whose entities point at others go first (dependents before targets)."""
        bodies = await self._blueprints(blueprints)
        edges = {
            blueprint: {
                r["target"]
                for r in (bodies[blueprint].get("relations") or {}).values()
                if r["target"] != blueprint
            }
            for blueprint in blueprints
        }
        return dependents_first(blueprints, edges)

    def _count_deleted(self, blueprint: str, count: int) -> None:
        for kind, resource in zip(self.record.kinds, self._config.resources, strict=True):
            if _constant_blueprint(resource) == blueprint:
                kind.deleted += count
                return


@dataclass(frozen=True, slots=True)
class DeletionPlan:
    stale: list[tuple[str, str]]
    blocked_reason: str | None = None


def plan_deletions(
    owned: list[tuple[str, str]],
    seen: Any,
    protected: set[tuple[str, str]],
    threshold: float,
    *,
    total: int | None = None,
) -> DeletionPlan:
    """Which owned entities to delete: not seen, not protected, and not too many of them.

    ``owned`` may list just a part of the owned entities (those not seen, say), with their
    total number in ``total``.
    """
    stale = [key for key in owned if key not in seen and key not in protected]
    total = len(owned) if total is None else total
    if total and stale and len(stale) / total > threshold:
        reason = (
            f"deleting {len(stale)} of {total} owned entities "
            f"({len(stale) / total:.0%}) would cross entityDeletionThreshold {threshold:g}; "
            "nothing was deleted"
        )
        return DeletionPlan(stale, reason)
    return DeletionPlan(stale)


def dependents_first(blueprints: list[str], edges: dict[str, set[str]]) -> list[str]:
    """Order ``blueprints`` so that one pointing at another comes before it (cycles: as given)."""
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(blueprint: str) -> None:
        if blueprint in ordered or blueprint in visiting:
            return
        visiting.add(blueprint)
        for other in blueprints:  # everything that points at `blueprint` goes first
            if blueprint in edges.get(other, set()):
                visit(other)
        visiting.discard(blueprint)
        ordered.append(blueprint)

    for blueprint in blueprints:
        visit(blueprint)
    return ordered


_T = TypeVar("_T")
_P = ParamSpec("_P")


async def _outcome(
    work: Callable[_P, Awaitable[_T]], *args: _P.args, **kwargs: _P.kwargs
) -> _T | Exception:
    """``work(*args, **kwargs)``'s result, or the exception it raised: for a task of the run's
    task group, which must not fail the group (that would stop every kind); whoever awaits the
    task raises it (:func:`_result`), in the kind it belongs to. ``work`` is called inside the
    task, so a task cancelled before it starts leaves no coroutine unawaited."""
    try:
        return await work(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - re-raised by _result where the task is awaited
        return exc


def _result(outcome: _T | Exception) -> _T:
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _entity_preview(entity: JSONObject) -> str:
    identifier = entity.get("identifier")
    return (
        f"{entity.get('blueprint')}/{identifier}"
        if isinstance(identifier, str)
        else str(identifier)[:200]
    )


def _constant_blueprint(resource: ResourceConfig) -> str | None:
    """The blueprint every entity of ``resource`` maps to, when its mapping is a plain string
    literal (``'"service"'``); None when an item decides it."""
    text = resource.port.entity.mappings.blueprint.strip()
    if len(text) > 2 and text[0] == text[-1] and text[0] in "\"'":
        inner = text[1:-1]
        if not any(char in inner for char in "\"'\\"):
            return inner
    return None


def _blueprints_of_no_earlier_kind(
    resource: ResourceConfig, earlier: Sequence[ResourceConfig]
) -> frozenset[str]:
    """``resource``'s blueprint if no resource before it in the config can write it."""
    blueprint = _constant_blueprint(resource)
    others = [_constant_blueprint(other) for other in earlier]
    if blueprint is None or None in others or blueprint in others:
        return frozenset()
    return frozenset({blueprint})


@dataclass(frozen=True, slots=True)
class _Page:
    """A fetched page, mapped and grouped by blueprint; or the error that fetching or
    preparing it raised (the kind raises it once the loads before it are settled)."""

    size: int
    mapped: MappedBatch = dataclasses.field(default_factory=MappedBatch)
    groups: dict[str, _Group] = dataclasses.field(default_factory=dict)
    error: Exception | None = None


_Preparer = Callable[[RawBatch], Awaitable[_Page]]


class _Prefetch:
    """Fetch and prepare (map, group, serialise) up to ``PIPELINE_DEPTH`` pages of one kind
    ahead of loading.

    The producer task lives in the run's task group and never fails it: a source error is
    handed to the consumer through the queue as a page's error, raised there once the pages
    before it are loaded, so it stops only its kind.
    It starts when the kind does, or earlier, when the previous kind's handler is exhausted
    (``following``): kinds still load one after another and their handlers still run one after
    another, but a kind's first pages are ready when it starts. Leaving the block (normally, by
    error or by cancellation) cancels the producer.
    """

    _DONE: Any = object()

    def __init__(
        self,
        group: asyncio.TaskGroup,
        kind: str,
        opener: Callable[[], tuple[AsyncIterator[RawBatch], _Preparer]],
        following: _Prefetch | None = None,
    ) -> None:
        self._group = group
        self._kind = kind
        self._opener = opener
        self._following = following
        self._queue: asyncio.Queue[Any] = asyncio.Queue(PIPELINE_DEPTH)
        self._producer: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._producer is None:
            self._producer = self._group.create_task(self._produce(), name=f"prefetch-{self._kind}")

    async def _produce(self) -> None:
        source: AsyncIterator[RawBatch] | None = None
        try:
            source, prepare = self._opener()
            async for batch in source:
                page = await prepare(batch)
                await self._queue.put(page)
                if page.error is not None:
                    return
            if self._following is not None:
                self._following.start()
        except Exception as exc:  # noqa: BLE001 - re-raised by the consumer
            await self._queue.put(_Page(0, error=exc))
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled: the consumer left
            # the handler itself raised CancelledError: a source failure, not an abort
            error = SourceError(f"the {self._kind!r} handler was cancelled")
            await self._queue.put(_Page(0, error=error))
        else:
            await self._queue.put(self._DONE)
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:  # run the handler's own cleanup now, not at garbage collection
                await close()

    async def __aenter__(self) -> AsyncIterator[_Page]:
        self.start()
        return self._pages()

    async def _pages(self) -> AsyncIterator[_Page]:
        while True:
            item = await self._queue.get()
            if item is self._DONE:
                return
            yield item

    async def __aexit__(self, *exc_info: object) -> None:
        if self._producer is not None and not self._producer.done():
            self._producer.cancel()
            await asyncio.wait({self._producer})
