"""`/v1/incidents/{incident_id}/export` (GET): an incident's evidence, SOC 2 or debrief bundle,
as a JSON bundle file or a PDF.

Everything a bundle holds is read in one snapshot (`queries.begin_snapshot`), scoped by tenant.
The JSON of `evidence` and `soc2` streams: its events come from a server-side cursor and go out
in chunks, so a 100,000-event incident is never held at once. Its PDF renders from a digest of
the same stream (the hash, the count, the first `PDF_EVENT_LIMIT` events). A debrief holds no
events and is written whole. The bundle is made at `as_of`: the request's, or an earlier one
given back; the same rows at the same `as_of` give the same bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import AwareDatetime
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction
from starlette.concurrency import run_in_threadpool

from api.auth import AsOf, Tenant
from api.deps import AppSettings, Conn
from api.errors import ERROR_RESPONSES, invalid_parameter, not_found
from api.exports import queries
from api.exports.bodies import MEDIA_TYPES, BundleFile, ExportFormat
from api.exports.pdf import PDF_EVENT_LIMIT, render_pdf
from api.incidents.listing import IncidentId
from domain.bundles import BundleDigest, adigest_bundle, astream_bundle, bundle_file
from domain.canonical import canonical_hash, format_time
from domain.debrief import RECURRENCE_WINDOW_DAYS, Recurrence, debrief
from domain.evidence import BundleKind, BundleSource, evidence_event, evidence_parts
from domain.settings import Settings
from domain.soc2 import soc2_parts

router = APIRouter(prefix="/v1/incidents", tags=["exports"], responses=ERROR_RESPONSES)
any_id = APIRouter(prefix="/v1/incidents", include_in_schema=False, responses=ERROR_RESPONSES)

KindParam = Annotated[
    BundleKind,
    Query(
        description="evidence: the incident, its timeline, every event and the rules' "
        "configuration; soc2: the same mapped to CC7.2-CC7.5 with an attestation; debrief: one "
        "page for an executive (no events).",
        examples=["soc2"],
    ),
]
FormatParam = Annotated[
    ExportFormat,
    Query(
        alias="format",
        description="json: the bundle file with its integrity hash; pdf: a rendering that "
        f"prints that hash and lists at most {PDF_EVENT_LIMIT} events.",
        examples=["pdf"],
    ),
]
BundleAsOf = Annotated[
    AwareDatetime | None,
    Query(
        description="The read watermark the bundle is made at: ISO 8601 with offset, at most "
        "the current as_of (default). Give back a bundle's as_of to export it again: the same "
        "incident at the same as_of gives the same bytes and hash.",
        examples=["2024-05-01T10:05:00Z"],
    ),
]

_OK = {
    "model": BundleFile,
    "description": "The bundle file (format=json, streamed) or its PDF (format=pdf), as an "
    "attachment named after kind, incident and as_of.",
    "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
}


@router.get(
    "/{incident_id:uuid}/export",
    summary="Evidence, SOC 2 or debrief bundle of an incident",
    response_model=None,
    responses={200: _OK},
)
@any_id.get("/{incident_id}/export", response_model=None)
async def export_incident(
    tenant: Tenant,
    conn: Conn,
    current: AsOf,
    settings: AppSettings,
    incident_id: IncidentId,
    kind: KindParam = BundleKind.EVIDENCE,
    export_format: FormatParam = ExportFormat.JSON,
    as_of: BundleAsOf = None,
) -> Response:
    """The bundle of the incident made at `as_of`; 404 for an incident of another tenant."""
    made_at = bundle_as_of(as_of, current)
    snapshot = await queries.begin_snapshot(conn)
    source = await _source(conn, tenant, incident_id, made_at, settings)
    if source is None:
        await snapshot.rollback()
        raise not_found("incident not found")
    attachment = _attachment(filename(source, kind, export_format), export_format)
    if kind is BundleKind.DEBRIEF:
        page = debrief(source, await _recurrence(conn, source))
        await snapshot.rollback()
        return Response(await _debrief_body(page, export_format), **attachment)
    parts = evidence_parts(source) if kind is BundleKind.EVIDENCE else soc2_parts(source)
    events = _events(conn, tenant, incident_id)
    if export_format is ExportFormat.JSON:
        return StreamingResponse(_ending(astream_bundle(parts, events), snapshot), **attachment)
    try:
        digest = await adigest_bundle(parts, events, sample=PDF_EVENT_LIMIT)
    finally:
        await snapshot.rollback()
    return Response(await run_in_threadpool(render_pdf, parts, digest), **attachment)


def bundle_as_of(given: datetime | None, current: datetime) -> datetime:
    """The `as_of` a bundle is made at (UTC): `given`, which may not be after `current` (the
    tables are complete only up to it), else `current`. Raises a 422 naming `as_of`."""
    if given is None:
        return current
    try:
        made_at = given.astimezone(UTC)
    except OverflowError:
        raise invalid_parameter("as_of", "as_of is outside years 1-9999 in UTC") from None
    if made_at > current:
        raise invalid_parameter(
            "as_of",
            f"as_of {format_time(made_at)} is after the current as_of {format_time(current)}: "
            "the tables are complete only up to it",
        )
    return made_at


def filename(source: BundleSource, kind: BundleKind, export_format: ExportFormat) -> str:
    """`<kind>-<incident id>-<as_of, basic ISO 8601>.<format>`, e.g.
    `evidence-0b5c...-20240501T100500.000000Z.json`."""
    stamp = format_time(source.as_of).replace("-", "").replace(":", "")
    return f"{kind.value}-{source.incident['incident_id']}-{stamp}.{export_format.value}"


def _attachment(name: str, export_format: ExportFormat) -> dict[str, Any]:
    """The media type and headers of an answer: a download named `name`."""
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return {"media_type": MEDIA_TYPES[export_format], "headers": headers}


async def _debrief_body(page: dict[str, Any], export_format: ExportFormat) -> bytes:
    if export_format is ExportFormat.JSON:
        return bundle_file(page)
    return await run_in_threadpool(render_pdf, page, BundleDigest(canonical_hash(page), 0))


async def _source(
    conn: AsyncConnection,
    tenant: str,
    incident_id: uuid.UUID,
    as_of: datetime,
    settings: Settings,
) -> BundleSource | None:
    incident = await queries.load_incident(conn, tenant, incident_id)
    if incident is None:
        return None
    return BundleSource(
        incident=incident,
        timeline=await queries.load_timeline(conn, tenant, incident_id),
        rules=settings.aggregation(),
        sla=settings.sla_targets(),
        as_of=as_of,
        lessons=await queries.load_lessons(conn, tenant, incident_id, as_of),
    )


async def _recurrence(conn: AsyncConnection, source: BundleSource) -> Recurrence:
    window = timedelta(days=RECURRENCE_WINDOW_DAYS)
    count = await queries.count_recurrence(conn, source.incident, window)
    return Recurrence(RECURRENCE_WINDOW_DAYS, count)


async def _events(
    conn: AsyncConnection, tenant: str, incident_id: uuid.UUID
) -> AsyncIterator[dict[str, Any]]:
    async for row in queries.stream_events(conn, tenant, incident_id):
        yield evidence_event(row)


async def _ending(chunks: AsyncIterator[bytes], snapshot: AsyncTransaction) -> AsyncIterator[bytes]:
    """`chunks`, then the end of the snapshot (also when the client goes away mid-stream)."""
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        await snapshot.rollback()
