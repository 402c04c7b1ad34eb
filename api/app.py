"""`create_app`: the read API's composition (routers, error handlers, metrics, engine).

No engine exists at import time: `create_app` takes one (tests) or creates it from
`settings.database_url` in the lifespan, and disposes of what it created.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from api import health
from api.cost_impact import routes as cost_impact
from api.costs import routes as costs
from api.deps import reject_unknown_parameters
from api.errors import install_error_handlers
from api.exports import routes as exports
from api.history import routes as history
from api.incident_metrics import routes as incident_metrics
from api.incidents import routes as incidents
from api.lessons import routes as lessons
from api.openapi import documented_openapi
from api.patterns import routes as patterns
from api.recurrence import routes as recurrence
from api.telemetry import MetricsMiddleware, RequestMetrics
from domain.settings import Settings
from storage.engine import create_async_db_engine

DESCRIPTION = """Read-only API over incidentflow's incidents and analytics tables.

Auth: `Authorization: Bearer <key>` on every `/v1` path. A tenant key sees its own tenant; an ops
key names it with `?tenant_id=`. Every response carries `as_of`: the event time up to which the
tables are complete; windows are measured back from it.
"""


ROUTERS = (
    health.router,
    incidents.router,
    incident_metrics.router,
    patterns.router,
    recurrence.router,
    cost_impact.router,
    history.router,
    costs.router,
    lessons.router,
    exports.router,
    incidents.any_id,
    exports.any_id,
)
"""One router per resource, each with its own path prefix, in the order they are included: the
`any_id` routers, last, answer any other segment under `/v1/incidents/` as an incident id to
validate."""


def create_app(settings: Settings, engine: AsyncEngine | None = None) -> FastAPI:
    """The FastAPI app; `engine` if given (the caller disposes of it), else one from settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if engine is not None:
            app.state.engine = engine
            yield
            return
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL is not set")
        # No ping per checkout: it is a round trip on every request. A connection broken by a
        # database restart fails one request and is replaced; recycling bounds their age.
        owned = create_async_db_engine(
            settings.database_url,
            pool_size=10,
            max_overflow=10,
            pool_pre_ping=False,
            pool_recycle=300,
            # Reads only: no BEGIN and ROLLBACK around each request, two round trips saved.
            isolation_level="AUTOCOMMIT",
        )
        app.state.engine = owned
        try:
            yield
        finally:
            await owned.dispose()

    app = FastAPI(
        title="incidentflow",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,  # a JSON 404, not a redirect without a body
        dependencies=[Depends(reject_unknown_parameters)],
    )
    app.state.settings = settings
    if engine is not None:
        app.state.engine = engine
    install_error_handlers(app)
    metrics = RequestMetrics()
    app.state.request_metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: documented_openapi(app, ROUTERS)  # type: ignore[method-assign]
    return app
