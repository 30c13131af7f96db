"""An ASGI server that runs inside an event loop another program owns."""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn

__all__ = ["EmbeddedServer"]


class EmbeddedServer(uvicorn.Server):
    """uvicorn's server without its signal handling: the host program decides when to stop
    (set ``should_exit``, or cancel the task), and SIGINT/SIGTERM stay the host's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield
