"""The pages of one kind: request after request until the list ends, per pagination style.

:func:`fetch_pages` yields each non-empty page of items. The list *ends* only when the API
says so (an empty page, ``hasMorePath`` false, no next cursor, no ``rel="next"`` link); every
failure -- a request that still fails after retries, a body that is not JSON, an
``itemsPath`` that does not produce an array, a cursor that repeats, more than ``maxPages``
pages -- raises :class:`~shoal.errors.SourceError`, so a resync never mistakes a broken
listing for a short one (and never deletes what it did not get to see).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import jq

from shoal.errors import SourceError
from shoal.integrations.http.client import ApiClient
from shoal.integrations.http.config import (
    CursorPagination,
    KindConfig,
    LinkPagination,
    NoPagination,
    OffsetPagination,
    PagePagination,
)

__all__ = ["fetch_pages"]


class _Pager:
    """The requests of one kind: its method, params, body, and the page budget."""

    def __init__(self, client: ApiClient, kind: str, config: KindConfig) -> None:
        self.client = client
        self.kind = kind
        self.config = config
        self.pages = 0
        self._programs: dict[str, Any] = {}

    async def get(self, url: str | httpx.URL, params: dict[str, Any]) -> tuple[httpx.Response, Any]:
        self.pages += 1
        if self.pages > self.config.max_pages:
            message = (
                f"kind {self.kind!r}: the listing did not end after maxPages "
                f"({self.config.max_pages}) pages; is the pagination configured right?"
            )
            raise SourceError(message)
        response = await self.client.request(
            self.config.method, url, params=params, json=self.config.body,
            headers=self.config.headers or None,
        )  # fmt: skip
        try:
            return response, response.json()
        except ValueError:
            message = (
                f"kind {self.kind!r}: {self.client.shown(response.request.url)} did not return JSON"
            )
            raise SourceError(message) from None

    def _program(self, expression: str) -> Any:
        if expression not in self._programs:
            self._programs[expression] = jq.compile(expression)
        return self._programs[expression]

    def items(self, body: Any) -> list[Any]:
        try:
            items = self._program(self.config.items_path).input_value(body).first()
        except (ValueError, StopIteration) as exc:
            message = f"kind {self.kind!r}: itemsPath {self.config.items_path!r} failed: {exc}"
            raise SourceError(message) from None
        if not isinstance(items, list):
            message = (
                f"kind {self.kind!r}: itemsPath {self.config.items_path!r} produced "
                f"{type(items).__name__ if items is not None else 'null'}, not an array"
            )
            raise SourceError(message)
        return items

    def evaluate(self, expression: str, body: Any, what: str) -> Any:
        try:
            return self._program(expression).input_value(body).first()
        except StopIteration:
            return None
        except ValueError as exc:
            raise SourceError(f"kind {self.kind!r}: {what} {expression!r} failed: {exc}") from None


def _sized(params: dict[str, Any], name: str | None, size: int | None) -> dict[str, Any]:
    return {**params, name: size} if name is not None and size is not None else params


async def _single(pager: _Pager) -> AsyncGenerator[list[Any]]:
    _, body = await pager.get(pager.config.path, dict(pager.config.params))
    if items := pager.items(body):
        yield items


def _position(style: PagePagination | OffsetPagination, position: int) -> dict[str, Any]:
    if isinstance(style, PagePagination):
        return _sized({style.page_param: position}, style.size_param, style.size)
    return {style.offset_param: position, style.limit_param: style.limit}


async def _numbered(
    pager: _Pager, style: PagePagination | OffsetPagination
) -> AsyncGenerator[list[Any]]:
    """Page numbers count up by one; offsets by the number of items received."""
    position = style.first_page if isinstance(style, PagePagination) else 0
    while True:
        params = {**pager.config.params, **_position(style, position)}
        _, body = await pager.get(pager.config.path, params)
        items = pager.items(body)
        if not items:
            return
        yield items
        more = style.has_more_path
        if more is not None:
            has_more = pager.evaluate(more, body, "hasMorePath")
            if has_more is None or has_more is False:  # jq's truth: 0, "" and [] are true
                return
        position += 1 if isinstance(style, PagePagination) else len(items)


async def _cursor(pager: _Pager, style: CursorPagination) -> AsyncGenerator[list[Any]]:
    base = _sized(dict(pager.config.params), style.size_param, style.size)
    seen: set[str] = set()
    params = base
    while True:
        _, body = await pager.get(pager.config.path, params)
        items = pager.items(body)
        if items:
            yield items
        cursor = pager.evaluate(style.cursor_path, body, "cursorPath")
        if cursor is None or cursor is False or cursor == "":
            return
        text = cursor if isinstance(cursor, str) else str(cursor)
        if text in seen:
            raise SourceError(f"kind {pager.kind!r}: the cursor {text!r} came back a second time")
        seen.add(text)
        params = {**base, style.cursor_param: text}


async def _linked(pager: _Pager, style: LinkPagination) -> AsyncGenerator[list[Any]]:
    url: str | httpx.URL = pager.config.path
    params: dict[str, Any] = _sized(dict(pager.config.params), style.size_param, style.size)
    while True:
        response, body = await pager.get(url, params)
        items = pager.items(body)
        if items:
            yield items
        following = response.links.get("next", {}).get("url")
        if not following:
            return
        url, params = response.request.url.join(following), {}  # the link carries the query


async def fetch_pages(
    client: ApiClient, kind: str, config: KindConfig
) -> AsyncGenerator[list[Any]]:
    """Yield the non-empty pages of items of ``kind`` (see the module docs for when it ends)."""
    pager = _Pager(client, kind, config)
    style = config.pagination
    if isinstance(style, NoPagination):
        pages = _single(pager)
    elif isinstance(style, PagePagination | OffsetPagination):
        pages = _numbered(pager, style)
    elif isinstance(style, CursorPagination):
        pages = _cursor(pager, style)
    else:
        pages = _linked(pager, style)
    async with contextlib.aclosing(pages):
        async for page in pages:
            yield page
