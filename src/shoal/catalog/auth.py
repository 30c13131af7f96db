"""Credentials, roles and access tokens (pure: no IO).

Roles, from most to least powerful:

- ``admin``: everything.
- ``member``: read everything and trigger resyncs.
- ``viewer``: read everything.
- ``integration``: scoped to one integration: write its own entities, resync state and runs,
  create the blueprints it ships (and patch those it created), read its own record and config
  and the catalog data it needs to reconcile. Nothing else.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import jwt

from shoal.errors import ForbiddenError, UnauthorizedError

__all__ = [
    "Action",
    "Principal",
    "Role",
    "authorize",
    "generate_client_id",
    "generate_secret",
    "hash_secret",
    "issue_token",
    "verify_secret",
    "verify_token",
]

TOKEN_TTL_SECONDS = 3 * 60 * 60
"""Port's access tokens last three hours; Ocean refreshes before expiry and on 401."""


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"
    INTEGRATION = "integration"


class Action(enum.StrEnum):
    READ = "read"  # blueprints, entities, integrations, runs
    TRIGGER = "trigger"  # record a resync request (PATCH integration, UI button)
    WRITE_INTEGRATION = "write_integration"  # create/patch an integration, its config and state
    WRITE_BLUEPRINT = "write_blueprint"
    WRITE_ENTITY = "write_entity"
    MANAGE = "manage"  # credentials and other administration


_ALLOWED: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.MEMBER: frozenset({Action.READ, Action.TRIGGER}),
    Role.VIEWER: frozenset({Action.READ}),
    Role.INTEGRATION: frozenset(
        {
            Action.READ,
            Action.TRIGGER,
            Action.WRITE_INTEGRATION,
            Action.WRITE_BLUEPRINT,
            Action.WRITE_ENTITY,
        }
    ),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a credential's client id, its role and, for integrations, their scope."""

    client_id: str
    role: Role
    integration: str | None = None
    session: str | None = None
    """The UI session the caller's token was issued for (see :func:`issue_token`), if any."""

    @property
    def is_machine(self) -> bool:
        return self.role is Role.INTEGRATION

    def can(self, action: Action) -> bool:
        return action in _ALLOWED[self.role]


def authorize(principal: Principal, action: Action, integration: str | None = None) -> None:
    """Raise ForbiddenError unless ``principal`` may do ``action`` (on ``integration``)."""
    if not principal.can(action):
        message = f"role {principal.role.value!r} may not {action.value.replace('_', ' ')}"
        raise ForbiddenError(message)
    if (
        principal.role is Role.INTEGRATION
        and integration is not None
        and integration != principal.integration
    ):
        message = (
            f"this credential belongs to integration {principal.integration!r}, not {integration!r}"
        )
        raise ForbiddenError(message)


def generate_client_id() -> str:
    return _token(18)


def generate_secret() -> str:
    return _token(36)


def _token(nbytes: int) -> str:
    """A URL-safe random token that does not start with ``-``, so that it can follow an option
    on a command line (``--client-secret TOKEN``) without being read as an option itself."""
    while (token := secrets.token_urlsafe(nbytes)).startswith("-"):
        pass
    return token


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """``scrypt$<salt hex>$<hash hex>``; secrets are random and long, so scrypt's cost is small."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_hex, _ = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    return hmac.compare_digest(hash_secret(secret, salt=bytes.fromhex(salt_hex)), stored)


def issue_token(
    key: str, principal: Principal, *, now: int, ttl: int = TOKEN_TTL_SECONDS, session: bool = False
) -> str:
    """A signed JWT (HS256). Ocean reads ``isMachine`` from the payload without verifying it.

    A ``session`` token (the web UI's sign-in) also names a new session id (``sid``): signing
    out ends that session, and the catalog refuses its token from then on.
    """
    payload: dict[str, object] = {
        "sub": principal.client_id,
        "role": principal.role.value,
        "integration": principal.integration,
        "isMachine": principal.is_machine,
        "iat": now,
        "exp": now + ttl,
    }
    if session:
        payload["sid"] = secrets.token_urlsafe(18)
    return jwt.encode(payload, key, algorithm="HS256")


def verify_token(key: str, token: str) -> Principal:
    try:
        payload = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["exp", "sub"]})
        session = payload.get("sid")
        if session is not None and not isinstance(session, str):
            raise ValueError(session)
        return Principal(payload["sub"], Role(payload["role"]), payload.get("integration"), session)
    except jwt.ExpiredSignatureError:
        message = "the access token has expired; request a new one at /v1/auth/access_token"
        raise UnauthorizedError(message) from None
    except (jwt.InvalidTokenError, KeyError, ValueError):
        message = "the access token is invalid"
        raise UnauthorizedError(message) from None
