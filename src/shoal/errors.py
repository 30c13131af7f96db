"""The one error hierarchy of Shoal.

Errors are grouped by how the caller reacts, not by the module that raises them::

    ShoalError
      CatalogError                 an API request the catalog refuses (carries HTTP status + code)
        InvalidInputError          422  malformed body, schema violation, bad query
        BadRequestError            400  a request that cannot be understood at all
        UnauthorizedError          401  missing, expired or wrong credentials
        ForbiddenError             403  the caller's role does not allow this
        NotFoundError              404  unknown integration, blueprint, entity, run
        ConflictError              409  the identifier is already taken
        PayloadTooLargeError       413  body over the configured limit
      ConfigError                  bad settings or a mapping config that does not compile
      SyncError                    a problem while resyncing one kind
        SourceError                the third-party source failed (fetch)
        MappingError               an item could not be mapped to an entity
        LoadError                  the catalog refused to store entities
      CatalogUnavailableError      the catalog could not be reached after retries

Domain code raises these; the HTTP layer maps ``CatalogError`` to a JSON body
``{"ok": false, "error": code, "message": ...}`` in exactly one place.
"""

from __future__ import annotations

__all__ = [
    "BadRequestError",
    "CatalogError",
    "CatalogUnavailableError",
    "ConfigError",
    "ConflictError",
    "ForbiddenError",
    "InvalidInputError",
    "LoadError",
    "MappingError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ShoalError",
    "SourceError",
    "SyncError",
    "UnauthorizedError",
]


class ShoalError(Exception):
    """Root of every error Shoal raises on purpose."""


class CatalogError(ShoalError):
    """A request the catalog refuses. ``status`` and ``code`` go on the wire."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequestError(CatalogError):
    status = 400
    code = "bad_request"


class InvalidInputError(CatalogError):
    status = 422
    code = "invalid_request"


class UnauthorizedError(CatalogError):
    status = 401
    code = "unauthorized"


class ForbiddenError(CatalogError):
    status = 403
    code = "forbidden"


class NotFoundError(CatalogError):
    status = 404
    code = "not_found"


class ConflictError(CatalogError):
    status = 409
    code = "conflict"


class PayloadTooLargeError(CatalogError):
    status = 413
    code = "payload_too_large"


class ConfigError(ShoalError):
    """Settings or a mapping config that cannot be used as given."""


class SyncError(ShoalError):
    """Something went wrong while resyncing one kind; the kind stops, the run goes on."""


class SourceError(SyncError):
    """The third-party source failed while fetching."""


class MappingError(SyncError):
    """An item could not be mapped to a valid entity (e.g. its identifier maps to null)."""


class LoadError(SyncError):
    """The catalog refused to store entities (a 4xx, or a 5xx after retries)."""


class CatalogUnavailableError(ShoalError):
    """The catalog could not be reached, or kept failing, after all retries."""
