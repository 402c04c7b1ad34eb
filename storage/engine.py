"""Database URLs and engine factories.

`DATABASE_URL` may be a plain libpq URL (`postgresql://`, `postgres://`, including the unix-socket
form `postgresql://user@/db?host=/socket/dir`) or an SQLAlchemy URL (`postgresql+psycopg://...`).
`normalize_url` turns either into an SQLAlchemy URL, `libpq_url` into one that `psycopg.connect`
accepts. Only the scheme is rewritten: credentials, host, query and escaping are kept verbatim.

The factories build a new engine on every call; this module holds no engine and caches nothing.
The caller owns the engine and disposes of it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_PLAIN_SCHEMES = ("postgresql", "postgres")


def _split_scheme(url: str) -> tuple[str, str | None, str]:
    """Return (dialect, driver or None, rest after `://`); raise ValueError if not PostgreSQL."""
    scheme, sep, rest = url.strip().partition("://")
    dialect, _, driver = scheme.lower().partition("+")
    if not sep or dialect not in _PLAIN_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL: {_redact(url)!r}")
    return dialect, driver or None, rest


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{host}"


def normalize_url(url: str, *, driver: str = "psycopg") -> str:
    """An SQLAlchemy URL for `url`: `postgresql+<driver>://...`.

    A URL that already names a driver is returned unchanged. Raises ValueError for a URL that is
    not a PostgreSQL one.
    """
    _, given_driver, rest = _split_scheme(url)
    if given_driver is not None:
        return url.strip()
    return f"postgresql+{driver}://{rest}"


def libpq_url(url: str) -> str:
    """A plain `postgresql://` URL for `url`, usable by `psycopg.connect` and `psql`."""
    _, _, rest = _split_scheme(url)
    return f"postgresql://{rest}"


def _json_text(value: Any) -> str:
    """JSON text for a JSON column: orjson, or the standard library for the integers past 64 bits
    that orjson refuses and `jsonb` keeps exactly (docs/contracts.md, "Large numbers")."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _defaults(kw: dict[str, Any]) -> dict[str, Any]:
    """Pre-ping, and orjson for JSON columns: the standard library's encoder was a fifth of the
    ingest worker's cost of writing an incident (its breakdown) on every batch."""
    kw.setdefault("pool_pre_ping", True)
    kw.setdefault("json_serializer", _json_text)
    kw.setdefault("json_deserializer", orjson.loads)
    return kw


def create_async_db_engine(url: str, **kw: Any) -> AsyncEngine:
    """A new AsyncEngine (psycopg 3) for `url`; keyword arguments go to `create_async_engine`."""
    return create_async_engine(normalize_url(url), **_defaults(kw))


def create_sync_db_engine(url: str, **kw: Any) -> Engine:
    """A new Engine (psycopg 3) for `url`; keyword arguments go to `create_engine`."""
    return create_engine(normalize_url(url), **_defaults(kw))
