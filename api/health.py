"""`/healthz`, `/readyz` and `/metrics`: no authentication."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import select, text

from api.bodies import examples
from api.deps import engine_of
from api.telemetry import RequestMetrics
from storage.migrate import is_current
from storage.schema import ingest_partitions

log = logging.getLogger("incidentflow.api")
router = APIRouter(tags=["health"])


class Health(BaseModel):
    model_config = examples({"status": "ok"})

    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    model_config = examples({"status": "ok", "database": True, "migrations_current": True})

    status: str = Field(description="`ok` or `unavailable`", examples=["ok"])
    database: bool = Field(description="the database answered")
    migrations_current: bool = Field(description="the schema is at the head revision")


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Database reachable and migrations current",
    responses={503: {"model": Readiness, "description": "Not ready."}},
)
async def readyz(request: Request) -> JSONResponse:
    database = await _database_answers(request)
    current = database and await _migrations_current(request)
    ready = Readiness(
        status="ok" if current else "unavailable", database=database, migrations_current=current
    )
    return JSONResponse(ready.model_dump(), status_code=200 if current else 503)


async def _database_answers(request: Request) -> bool:
    try:
        async with engine_of(request).connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as error:
        log.warning("readiness: database unreachable: %s", error)
        return False
    return True


async def _migrations_current(request: Request) -> bool:
    url = request.app.state.engine.url.render_as_string(hide_password=False)
    try:
        return await asyncio.to_thread(is_current, url)
    except Exception as error:
        log.warning("readiness: cannot read the migration revision: %s", error)
        return False


_METRICS_EXAMPLE = """\
# TYPE incidentflow_api_requests_total counter
incidentflow_api_requests_total{method="GET",route="/v1/incidents",status="200"} 42.0
# TYPE incidentflow_ingest_watermark_age_seconds gauge
incidentflow_ingest_watermark_age_seconds{partition="0"} 1.5
# TYPE incidentflow_ingest_max_watermark_age_seconds gauge
incidentflow_ingest_max_watermark_age_seconds 1.5
"""


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"example": _METRICS_EXAMPLE}},
            "description": "Prometheus text.",
        }
    },
)
async def metrics(request: Request) -> Response:
    collectors: RequestMetrics = request.app.state.request_metrics
    try:
        async with engine_of(request).connect() as conn:
            rows = await conn.execute(
                select(ingest_partitions.c.partition, ingest_partitions.c.watermark).where(
                    ingest_partitions.c.watermark.is_not(None)
                )
            )
            collectors.set_watermarks(dict(rows.tuples().all()), datetime.now(UTC))
    except Exception as error:
        log.warning("metrics: cannot read the ingest watermarks: %s", error)
    return Response(generate_latest(collectors.registry), media_type=CONTENT_TYPE_LATEST)
