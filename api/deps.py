"""FastAPI dependencies every router shares: the database connection, the settings, and the
rejection of query parameters a path does not declare. (The tenant and `as_of` are in `api.auth`:
they are read together with the key.)
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.errors import invalid_parameter
from domain.settings import Settings
from storage.schema import ingest_partitions


def engine_of(request: Request) -> AsyncEngine:
    """The engine `create_app` put in `app.state.engine`."""
    engine: AsyncEngine = request.app.state.engine
    return engine


async def connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """An AsyncConnection for one request (read-only use; nothing is committed)."""
    async with engine_of(request).connect() as conn:
        yield conn


Conn = Annotated[AsyncConnection, Depends(connection)]
"""Use as a parameter type: `conn: Conn`."""


async def settings_of(request: Request) -> Settings:
    """The settings `create_app` was given (async: FastAPI runs a plain function dependency in a
    thread pool, a thread hop per request)."""
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(settings_of)]
"""Use as a parameter type: `settings: AppSettings`."""


AS_OF_READ = "incidentflow.as_of"
"""Key in `conn.info` under which authentication leaves the watermark it read with the key."""


@functools.cache
def watermark_column() -> ColumnElement[datetime]:
    """The minimum non-null ingest watermark, as a scalar subquery (one object, reused)."""
    return select(func.min(ingest_partitions.c.watermark)).scalar_subquery()


async def read_as_of(conn: AsyncConnection) -> datetime:
    """`as_of` in UTC: the minimum non-null ingest watermark, or the current time if none.

    `as_of` is the event time up to which the tables are complete: every window and retention of
    the API is measured back from it, never from the wall clock. Authentication reads it in the
    same round trip as the key and leaves it in `conn.info`; it is taken from there once (the
    connection goes back to the pool after the request), else read here.
    """
    if AS_OF_READ in conn.info:
        watermark = conn.info.pop(AS_OF_READ)
    else:
        watermark = (await conn.execute(select(watermark_column()))).scalar()
    return watermark.astimezone(UTC) if watermark is not None else datetime.now(UTC)


def _declared_query_parameters(app: FastAPI) -> dict[tuple[str, str], frozenset[str]]:
    """(path template, method) -> the query parameters its OpenAPI operation declares."""
    declared: dict[tuple[str, str], frozenset[str]] | None = getattr(
        app.state, "query_parameters", None
    )
    if declared is None:
        declared = {
            (path, method): frozenset(
                parameter["name"]
                for parameter in operation.get("parameters", ())
                if parameter["in"] == "query"
            )
            for path, operations in app.openapi().get("paths", {}).items()
            for method, operation in operations.items()
        }
        app.state.query_parameters = declared
    return declared


async def reject_unknown_parameters(request: Request) -> None:
    """A query parameter its path does not declare is a 422 naming it.

    Otherwise a misspelt one (`sort=` for `sort_by=`) would be ignored and the answer would look
    right. The declared names are read once from the OpenAPI schema, by the route's path template
    without converters (`/v1/incidents/{incident_id}`), as the schema names it.
    """
    path = getattr(request.scope.get("route"), "path_format", None)
    if path is None:
        return
    declared = _declared_query_parameters(request.app).get((path, request.method.lower()))
    if declared is None:
        return
    for name in request.query_params:
        if name not in declared:
            accepted = ", ".join(sorted(declared)) or "none"
            raise invalid_parameter(name, f"unknown query parameter {name!r}; accepted: {accepted}")
