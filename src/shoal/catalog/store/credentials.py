"""API credentials (client id + hashed secret + role) and the token signing key."""

from __future__ import annotations

import asyncio
import secrets

from sqlalchemy import select

from shoal.catalog.auth import (
    TOKEN_TTL_SECONDS,
    Principal,
    Role,
    generate_client_id,
    generate_secret,
    hash_secret,
    verify_secret,
)
from shoal.catalog.store import schema
from shoal.catalog.store.database import Database
from shoal.clock import now_us
from shoal.errors import InvalidInputError, UnauthorizedError

__all__ = ["CredentialStore"]

_c = schema.credentials
_ended = schema.ended_sessions


class CredentialStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(
        self, role: Role, *, integration: str | None = None, description: str | None = None
    ) -> tuple[str, str]:
        """A new credential; returns ``(client_id, client_secret)``. The secret is not stored."""
        if (role is Role.INTEGRATION) != (integration is not None):
            message = "an integration credential needs an integration, and only it may have one"
            raise InvalidInputError(message)
        created = await self._create(role, integration, description, only_first=False)
        assert created is not None  # only_first=False always creates
        return created

    async def create_first_admin(self, description: str) -> tuple[str, str] | None:
        """An admin credential if the store holds no credential yet (checked in the same write
        transaction as the insert: replicas starting together create one between them);
        ``(client_id, client_secret)``, or None."""
        return await self._create(Role.ADMIN, None, description, only_first=True)

    async def _create(
        self, role: Role, integration: str | None, description: str | None, *, only_first: bool
    ) -> tuple[str, str] | None:
        client_id, secret = generate_client_id(), generate_secret()
        secret_hash = await asyncio.to_thread(hash_secret, secret)
        async with self._db.control_write() as conn:
            if only_first and (await conn.execute(select(_c.c.client_id).limit(1))).first():
                return None
            await conn.execute(
                _c.insert().values(
                    client_id=client_id,
                    secret_hash=secret_hash,
                    role=role.value,
                    integration=integration,
                    description=description,
                    created_at=now_us(),
                )
            )
        return client_id, secret

    async def delete(self, client_id: str) -> None:
        async with self._db.control_write() as conn:
            await conn.execute(_c.delete().where(_c.c.client_id == client_id))

    async def authenticate(self, client_id: object, client_secret: object) -> Principal:
        message = "invalid clientId or clientSecret"
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            raise UnauthorizedError(message)
        async with self._db.read() as conn:
            row = (await conn.execute(select(_c).where(_c.c.client_id == client_id))).first()
        # scrypt takes tens of milliseconds on purpose: keep it off the event loop
        if row is None or not await asyncio.to_thread(
            verify_secret, client_secret, row.secret_hash
        ):
            raise UnauthorizedError(message)
        return Principal(row.client_id, Role(row.role), row.integration)

    async def end_session(self, session: str) -> None:
        """Refuse the tokens of a web UI session from now on (signing out)."""
        now = now_us()
        async with self._db.control_write() as conn:
            await conn.execute(_ended.delete().where(_ended.c.expires_at < now))
            await conn.execute(
                self._db.insert(_ended)
                .values(id=session, expires_at=now + TOKEN_TTL_SECONDS * 1_000_000)
                .on_conflict_do_nothing()
            )

    async def session_ended(self, session: str) -> bool:
        async with self._db.read() as conn:
            row = (await conn.execute(select(_ended.c.id).where(_ended.c.id == session))).first()
        return row is not None

    async def count(self) -> int:
        async with self._db.read() as conn:
            return len((await conn.execute(select(_c.c.client_id))).all())

    async def signing_key(self) -> str:
        """The HS256 key for access tokens, created once and shared by every replica."""
        table = schema.server_settings
        async with self._db.control_write() as conn:
            row = (
                await conn.execute(select(table.c.value).where(table.c.key == "jwt_key"))
            ).first()
            if row is not None:
                return str(row.value)
            await conn.execute(
                self._db.insert(table)
                .values(key="jwt_key", value=secrets.token_urlsafe(48))
                .on_conflict_do_nothing()
            )
            row = (
                await conn.execute(select(table.c.value).where(table.c.key == "jwt_key"))
            ).first()
            assert row is not None
            return str(row.value)
