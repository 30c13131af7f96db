"""Server-sent events: a WHATWG-conformant decoder and the stream a caller iterates.

The decoder is pure (text in, events out) so it is tested without IO. :class:`EventStream` wraps
one HTTP response; reconnecting is the caller's job, with :attr:`EventStream.last_event_id` as
the ``Last-Event-ID`` of the next connection.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx
import orjson

from shoal.errors import CatalogUnavailableError
from shoal.types import JSON

__all__ = ["EventStream", "SSEDecoder", "ServerSentEvent"]

# CRLF first, so that a "\r\n" pair counts as one line end, not two.
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event."""

    event: str
    """The ``event:`` field, ``"message"`` when absent."""
    data: str
    """The ``data:`` lines joined with newlines."""
    id: str | None = None
    """The last event id at dispatch time (it carries over from earlier events); None if unset."""

    def json(self) -> JSON:
        """``data`` parsed as JSON (Shoal's events always carry JSON).

        Raises ``orjson.JSONDecodeError`` (a ``ValueError``) if it is not JSON.
        """
        return orjson.loads(self.data)


class SSEDecoder:
    """Incremental ``text/event-stream`` parser (WHATWG HTML, "event stream interpretation").

    Feed decoded text in chunks of any size; complete events come back in order. Comments
    (lines starting with ``:``) are ignored, unknown fields too, and an event that the stream
    ends in the middle of is discarded, all as the standard requires.
    """

    def __init__(self, *, last_event_id: str | None = None) -> None:
        self._pending = ""
        self._started = False
        self._event_type = ""
        self._data: list[str] = []
        self._id_buffer = last_event_id or ""
        self._last_event_id = self._id_buffer
        self._retry_ms: int | None = None

    @property
    def last_event_id(self) -> str | None:
        """The id of the last dispatched event (None if none was ever set)."""
        return self._last_event_id or None

    @property
    def retry_ms(self) -> int | None:
        """The reconnection delay the server asked for with ``retry:``, in milliseconds."""
        return self._retry_ms

    def feed(self, text: str) -> list[ServerSentEvent]:
        """Consume ``text`` and return the events it completed."""
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")  # a leading BOM is not part of the first line
        buffer = self._pending + text
        events: list[ServerSentEvent] = []
        position = 0
        for match in _LINE_END.finditer(buffer):
            if match.group() == "\r" and match.end() == len(buffer):
                break  # maybe the first half of a "\r\n" split across chunks: wait for more
            self._line(buffer[position : match.start()], events)
            position = match.end()
        self._pending = buffer[position:]
        return events

    def close(self) -> list[ServerSentEvent]:
        """Signal the end of the stream; returns what a final lone ``\\r`` completed."""
        events: list[ServerSentEvent] = []
        if self._pending.endswith("\r"):
            self._line(self._pending[:-1], events)
        # Whatever is left is an unterminated line or event: the standard discards it.
        self._pending = ""
        self._event_type = ""
        self._data.clear()
        return events

    def _line(self, line: str, events: list[ServerSentEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line.startswith(":"):
            return  # comment, e.g. a keep-alive
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event_type = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self._id_buffer = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry_ms = int(value)

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        # The id is committed even for an event without data, so an id-only block still moves
        # the reconnection point forward.
        self._last_event_id = self._id_buffer
        if not self._data:
            self._event_type = ""
            return
        events.append(
            ServerSentEvent(
                event=self._event_type or "message",
                data="\n".join(self._data),
                id=self._last_event_id or None,
            )
        )
        self._event_type = ""
        self._data.clear()


Opener = Callable[[str | None], Awaitable[httpx.Response]]
"""Opens the stream: given the Last-Event-ID, returns a streaming 2xx response."""


class EventStream:
    """Async iterator over the events of one connection; also an async context manager.

    The connection opens on the first iteration and closes when the stream ends, on an error,
    or on :meth:`aclose` / leaving the ``async with`` block. A dropped or silent connection
    raises :class:`~shoal.errors.CatalogUnavailableError`; the caller reconnects with
    :attr:`last_event_id`, waiting :attr:`retry_ms` if the server set it.
    """

    def __init__(self, opener: Opener, *, last_event_id: str | None = None) -> None:
        self._opener = opener
        self._last_event_id = last_event_id or None
        self._retry_ms: int | None = None
        self._events = self._generate()

    @property
    def last_event_id(self) -> str | None:
        """The id to send as ``Last-Event-ID`` when reconnecting.

        It covers exactly the events already handed to the caller, never ones still buffered.
        """
        return self._last_event_id

    @property
    def retry_ms(self) -> int | None:
        """The reconnection delay the server requested with ``retry:``, in milliseconds."""
        return self._retry_ms

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ServerSentEvent:
        event = await self._events.__anext__()
        self._last_event_id = event.id
        return event

    async def aclose(self) -> None:
        """Close the connection; iterating afterwards ends immediately."""
        await self._events.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _generate(self) -> AsyncGenerator[ServerSentEvent, None]:
        response = await self._opener(self._last_event_id)
        decoder = SSEDecoder(last_event_id=self._last_event_id)
        # SSE is always UTF-8 whatever the headers say; decode incrementally because a chunk
        # may end inside a multi-byte character.
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            async for chunk in response.aiter_bytes():
                for event in decoder.feed(utf8.decode(chunk)):
                    yield event
                # Every event of the chunk has been consumed: id-only blocks count now.
                self._sync(decoder)
            for event in decoder.feed(utf8.decode(b"", final=True)) + decoder.close():
                yield event
            self._sync(decoder)
        except httpx.RequestError as exc:
            message = f"event stream {response.request.url} broke: {exc!r}"
            raise CatalogUnavailableError(message) from exc
        finally:
            await response.aclose()

    def _sync(self, decoder: SSEDecoder) -> None:
        self._last_event_id = decoder.last_event_id
        self._retry_ms = decoder.retry_ms
