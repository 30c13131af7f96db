"""JSON responses serialised with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSON

__all__ = ["JSONResponse"]


class JSONResponse(_StarletteJSON):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
