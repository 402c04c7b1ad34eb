"""API keys: creation, lookup by hash, listing and revocation.

A key reads `ifk_<key_id>_<secret>`: `key_id` is a public identifier (listed, used to revoke), the
secret is 32 random bytes in URL-safe base64 without padding. Only the SHA-256 hex digest of the
whole key is stored (`api_keys.key_hash`); a presented key is found by hashing it and looking the
digest up, so no comparison of secrets happens in Python. A key is scoped to one tenant or is an
ops key (may name any tenant).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import api_keys

PREFIX = "ifk"
_KEY_ID_BYTES = 6
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class KeyScope:
    """What a valid key may see: one tenant, or every tenant (ops)."""

    key_id: str
    tenant_id: str | None

    @property
    def is_ops(self) -> bool:
        return self.tenant_id is None


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A stored key as `keys list` shows it (never the key itself)."""

    key_id: str
    tenant_id: str | None
    is_ops: bool
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def scope(self) -> str:
        return "ops" if self.is_ops else f"tenant:{self.tenant_id}"


def hash_key(key: str) -> str:
    """The SHA-256 hex digest stored for `key`."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh (key_id, key) pair; the key embeds the key id."""
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    return key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"


async def create_key(
    conn: AsyncConnection, *, tenant_id: str | None, name: str = ""
) -> tuple[str, str]:
    """Store a new key for `tenant_id` (None: an ops key); returns (key_id, key). Not committed."""
    key_id, key = new_key()
    await conn.execute(
        insert(api_keys).values(
            key_hash=hash_key(key),
            key_id=key_id,
            tenant_id=tenant_id,
            is_ops=tenant_id is None,
            name=name,
        )
    )
    return key_id, key


async def find_key(conn: AsyncConnection, key: str) -> KeyScope | None:
    """The scope of `key` if it is stored and not revoked, else None."""
    found = await find_key_with(conn, key)
    return found[0] if found else None


@functools.cache
def _lookup(also: tuple[ColumnElement[Any], ...]) -> Select[Any]:
    """The lookup statement for `also`, built once: it runs on every API request, and a reused
    statement skips SQLAlchemy's per-execution construction and cache-key work."""
    return select(api_keys.c.key_id, api_keys.c.tenant_id, *also).where(
        api_keys.c.key_hash == bindparam("key_hash"), api_keys.c.revoked_at.is_(None)
    )


async def find_key_with(
    conn: AsyncConnection, key: str, *also: ColumnElement[Any]
) -> tuple[KeyScope, tuple[Any, ...]] | None:
    """`find_key`, also selecting the scalar expressions `also` in the same round trip.

    Pass the same expression objects on every call (see `_lookup`).
    """
    if not key.startswith(f"{PREFIX}_"):
        return None
    result = await conn.execute(_lookup(also), {"key_hash": hash_key(key)})
    row = result.first()
    if row is None:
        return None
    return KeyScope(key_id=row[0], tenant_id=row[1]), tuple(row[2:])


async def list_keys(conn: AsyncConnection) -> list[KeyInfo]:
    """Every stored key, oldest first."""
    columns = [getattr(api_keys.c, field) for field in KeyInfo.__dataclass_fields__]
    rows = await conn.execute(select(*columns).order_by(api_keys.c.created_at, api_keys.c.key_id))
    return [KeyInfo(**row._asdict()) for row in rows]


async def revoke_key(conn: AsyncConnection, key_id: str) -> bool:
    """Revoke the key `key_id`; False if there is no such key (revoking twice is a no-op)."""
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.key_id == key_id)
        .values(revoked_at=func.coalesce(api_keys.c.revoked_at, func.now()))
        .returning(api_keys.c.key_id)
    )
    return result.first() is not None
