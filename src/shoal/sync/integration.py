"""The SDK surface: an :class:`Integration` with one resync handler per kind.

A handler is an async generator yielding batches (lists) of raw items, or a plain async
function returning one list::

    integration = Integration("fake", version="0.1.0")

    @integration.on_resync("fake-person")
    async def persons(kind: str) -> AsyncIterator[list[dict[str, Any]]]:
        async for page in client.pages("/persons"):
            yield page
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from shoal.errors import ConfigError
from shoal.types import JSONObject

__all__ = ["Integration", "KindHandler", "RawBatch", "StartHook"]

RawBatch: TypeAlias = list[JSONObject]
KindHandler: TypeAlias = Callable[[str], AsyncIterator[RawBatch] | Awaitable[RawBatch]]
StartHook: TypeAlias = Callable[[], Awaitable[None]]


@dataclass
class Integration:
    """An integration type: its kinds, default mapping config and default blueprints.

    ``type`` becomes part of the datasource stamp (``port-ocean/{type}/{version}/{id}/exporter``)
    so entities it writes are recognised as its own.
    """

    type: str
    version: str = "0.1.0"
    default_mapping: JSONObject | None = None
    default_blueprints: list[JSONObject] = field(default_factory=list)
    _handlers: dict[str, KindHandler] = field(default_factory=dict, repr=False)
    _start_hooks: list[StartHook] = field(default_factory=list, repr=False)

    def on_resync(self, kind: str) -> Callable[[KindHandler], KindHandler]:
        """Register the handler that fetches every item of ``kind``."""

        def register(handler: KindHandler) -> KindHandler:
            if kind in self._handlers:
                message = f"kind {kind!r} already has a resync handler"
                raise ConfigError(message)
            self._handlers[kind] = handler
            return handler

        return register

    def on_start(self, hook: StartHook) -> StartHook:
        """Register a coroutine run once when the integration starts, before any resync."""
        self._start_hooks.append(hook)
        return hook

    @property
    def kinds(self) -> list[str]:
        return list(self._handlers)

    def has_kind(self, kind: str) -> bool:
        return kind in self._handlers

    async def run_start_hooks(self) -> None:
        for hook in self._start_hooks:
            await hook()

    async def fetch(self, kind: str) -> AsyncIterator[RawBatch]:
        """Yield the batches of raw items of ``kind``, whichever handler shape was registered."""
        try:
            handler = self._handlers[kind]
        except KeyError:
            message = f"no resync handler for kind {kind!r}; known kinds: {sorted(self._handlers)}"
            raise ConfigError(message) from None
        result = handler(kind)
        if isinstance(result, AsyncIterator):
            try:
                async for batch in result:
                    yield list(batch)
            finally:  # closing this closes the handler: its cleanup runs now, in this task
                close = getattr(result, "aclose", None)
                if close is not None:
                    await close()
        else:
            batch = await result
            if batch:
                yield list(batch)


def load_resource(package_dir: Path, name: str) -> Any:
    """Read a YAML/JSON resource file that ships beside an integration's module."""
    import yaml

    with (package_dir / name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)
