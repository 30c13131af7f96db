"""Reading catalog responses: JSON bodies, error messages, and the error each status maps to."""

from __future__ import annotations

import httpx
import orjson

from shoal.errors import (
    BadRequestError,
    CatalogError,
    CatalogUnavailableError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    ShoalError,
    UnauthorizedError,
)
from shoal.types import JSONObject

__all__ = [
    "describe",
    "json_object",
    "object_field",
    "object_list",
    "ok_body",
    "refusal",
    "server_message",
]

_ERRORS_BY_STATUS: dict[int, type[CatalogError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: InvalidInputError,
}


def server_message(response: httpx.Response) -> tuple[str | None, str]:
    """The ``(code, message)`` of an error response, tolerating non-JSON bodies.

    Port's shape is ``{"ok": false, "error": code, "message": text}``; FastAPI's ``detail`` and
    a nested ``{"error": {"code", "message"}}`` are understood too.
    """
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    code: str | None = None
    message: str | None = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            nested_code, nested_message = error.get("code"), error.get("message")
            code = nested_code if isinstance(nested_code, str) else None
            message = nested_message if isinstance(nested_message, str) else None
        elif isinstance(error, str):
            code = error
        for key in ("message", "detail"):
            value = body.get(key)
            if message is None and isinstance(value, str):
                message = value
    if message is None:
        message = response.text.strip()[:300] or response.reason_phrase or "no details"
    return code, message


def describe(response: httpx.Response) -> str:
    """``HTTP 422 invalid_request: <server message>`` for logs and error messages."""
    code, message = server_message(response)
    status = f"HTTP {response.status_code}" + (f" {code}" if code else "")
    return f"{status}: {message}"


def refusal(response: httpx.Response, what: str) -> ShoalError:
    """The error for a final non-2xx answer: a ``CatalogError`` subclass chosen by status, or
    ``CatalogUnavailableError`` for a 5xx. ``what`` names the operation in the message."""
    text = f"{what}: catalog answered {describe(response)}"
    status = response.status_code
    if status >= 500:
        return CatalogUnavailableError(text)
    code, _ = server_message(response)
    error_class = _ERRORS_BY_STATUS.get(status, CatalogError)
    error = error_class(text, code=code)
    if error_class is CatalogError:
        error.status = status  # keep the real status (405, 410, ...) instead of the default 400
    return error


def json_object(response: httpx.Response, what: str) -> JSONObject:
    """The body as a JSON object; a non-JSON or non-object body is a broken catalog."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        message = f"{what}: catalog answered HTTP {response.status_code} with a non-JSON body"
        raise CatalogUnavailableError(message) from exc
    if not isinstance(body, dict):
        message = f"{what}: catalog answered with JSON that is not an object"
        raise CatalogUnavailableError(message)
    return body


def ok_body(response: httpx.Response, what: str) -> JSONObject:
    """The JSON object of a 2xx response; any other status raises :func:`refusal`."""
    if not response.is_success:
        raise refusal(response, what)
    return json_object(response, what)


def object_field(body: JSONObject, key: str, what: str) -> JSONObject:
    """``body[key]``, which must be a JSON object."""
    value = body.get(key)
    if not isinstance(value, dict):
        message = f"{what}: catalog response has no {key!r} object"
        raise CatalogUnavailableError(message)
    return value


def object_list(body: JSONObject, key: str, what: str) -> list[JSONObject]:
    """The objects of the list ``body[key]`` (absent = empty); non-object items are skipped."""
    value = body.get(key, [])
    if not isinstance(value, list):
        message = f"{what}: catalog response field {key!r} is not a list"
        raise CatalogUnavailableError(message)
    return [item for item in value if isinstance(item, dict)]
