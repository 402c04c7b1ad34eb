"""PDF renderings of export bundles, with reportlab.

`render_pdf(parts, digest)` renders one bundle (`evidence`, `soc2` or `debrief`, by its `kind`)
from the bundle without its events (`parts`) and the `BundleDigest` of its JSON file: the
integrity hash, the number of events and the first of them. The PDF prints the incident id and
that hash on a line each, and says what it summarises: it lists at most `PDF_EVENT_LIMIT` events
and `PDF_TIMELINE_LIMIT` timeline entries; the JSON bundle of the same kind and `as_of` holds all
of them, and its hash is the one printed.

The same inputs give the same bytes: reportlab's invariant mode (no random or time-based
document id), creation and modification dates set to the bundle's `as_of`, and nothing else
variable. The core fonts cover Latin-1: other characters are printed as `\\uXXXX` escapes (line
breaks and tabs as spaces), and long texts are cut at `PDF_TEXT_LIMIT` characters; the JSON
bundle has the exact text.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.doctemplate import BaseDocTemplate

from domain.bundles import BundleDigest
from domain.canonical import canonical, format_time, plain_json

PDF_EVENT_LIMIT = 100
PDF_TIMELINE_LIMIT = 200
PDF_TEXT_LIMIT = 300
"""Characters of a stored value shown in a table cell; a fact (one per row) shows up to
`PDF_FACT_LIMIT`. The PDF's own sentences are never cut."""
PDF_FACT_LIMIT = 2000
MARGIN = 15 * mm
TITLES = {
    "evidence": "Incident evidence bundle",
    "soc2": "SOC 2 incident-response evidence (CC7.2 to CC7.5)",
    "debrief": "Executive debrief",
}

_STYLES = getSampleStyleSheet()
_BODY = ParagraphStyle("body", parent=_STYLES["Normal"], fontSize=9, leading=11.5)
_SMALL = ParagraphStyle("small", parent=_BODY, fontSize=7, leading=8.5, wordWrap="CJK")
_LINE = ParagraphStyle("line", parent=_BODY, fontName="Courier", fontSize=8, leading=10)
_H1 = ParagraphStyle("h1", parent=_STYLES["Heading1"], fontSize=15, spaceAfter=4)
_H2 = ParagraphStyle("h2", parent=_STYLES["Heading2"], fontSize=11, spaceBefore=8, spaceAfter=3)
_GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
    ]
)
_FACT_GRID = TableStyle([command for command in _GRID.getCommands() if command[0] != "BACKGROUND"])
_WIDTH = A4[0] - 2 * MARGIN


def printable(value: Any, limit: int | None = PDF_TEXT_LIMIT) -> str:
    """`value` as text the core fonts print: Latin-1 kept, line breaks and tabs as spaces,
    every other character as `\\uXXXX` (`\\UXXXXXXXX` past U+FFFF); cut at `limit` characters
    with `...`. Times are written as in the JSON bundle, None as an empty string."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_time(value)
    text = f"{value:f}" if isinstance(value, Decimal) else str(value)
    cut = text if limit is None or len(text) <= limit else text[:limit] + "..."
    return "".join(_printable_char(char) for char in cut)


def _printable_char(char: str) -> str:
    point = ord(char)
    if 0x20 <= point < 0x7F or 0xA0 <= point <= 0xFF:
        return char
    if char in "\t\n\r":
        return " "
    return f"\\u{point:04x}" if point <= 0xFFFF else f"\\U{point:08x}"


def _para(value: Any, style: ParagraphStyle = _SMALL, limit: int = PDF_TEXT_LIMIT) -> Paragraph:
    return Paragraph(escape(printable(value, limit)), style)


def _prose(text: str, style: ParagraphStyle = _BODY) -> Paragraph:
    """A sentence of the PDF's own (values in it made printable, never cut)."""
    return Paragraph(escape(printable(text, None)), style)


def _json_text(value: Any) -> str:
    """A small JSON value (timeline data, facts) as one line of canonical JSON."""
    return canonical(plain_json(value)).decode()


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    limit: int = PDF_TEXT_LIMIT,
) -> Table:
    cells = [
        [_para(name) for name in header],
        *[[_para(cell, limit=limit) for cell in row] for row in rows],
    ]
    table = Table(cells, colWidths=[width * _WIDTH for width in widths], repeatRows=1)
    table.setStyle(_GRID)
    return table


def _facts(pairs: Sequence[tuple[str, Any]]) -> Table:
    table = Table(
        [[_para(name, _BODY), _para(value, _BODY, PDF_FACT_LIMIT)] for name, value in pairs],
        colWidths=[0.28 * _WIDTH, 0.72 * _WIDTH],
    )
    table.setStyle(_FACT_GRID)
    return table


def _identity(parts: Mapping[str, Any], digest: BundleDigest) -> list[Flowable]:
    kind = parts["kind"]
    return [
        Paragraph(escape(TITLES.get(kind, kind)), _H1),
        _prose(f"Incident: {parts['incident_id']}", _LINE),
        _prose(f"Integrity (SHA-256): {digest.hexdigest}", _LINE),
        Spacer(1, 3),
        _prose(
            f"Bundle {parts['bundle_id']} ({kind}) of tenant {parts['tenant_id']}, as of "
            f"{printable(parts['as_of'])}, generated by {parts['generated_by']} from its stored "
            "rows. This PDF renders the JSON bundle of the same kind and as of; the hash above is "
            "that JSON bundle's SHA-256 over its canonical form, which incidentflow verify "
            "BUNDLE.json recomputes.",
            _BODY,
        ),
    ]


def _incident(parts: Mapping[str, Any]) -> list[Flowable]:
    row, derived = parts["incident"], parts["derived"]
    sla = derived["sla"]
    pairs = [
        ("title", row["title"]),
        ("description", derived["description"]),
        ("state", row["lifecycle_state"]),
        ("severity", row["severity"]),
        ("classification", f"{row['trigger_type']} / {row['category']} / {row['cause_type']}"),
        ("fingerprints", ", ".join(row["fingerprints"]) or row["fingerprint"]),
        (
            "started / last event",
            f"{printable(row['started_at'])} / {printable(row['last_event_at'])}",
        ),
        ("acknowledged", _when_by(row["acked_at"], row["acked_by"])),
        ("resolved", _when_by(row["resolved_at"], row["resolved_by"], row["resolution_method"])),
        ("calls affected", f"{row['calls_affected']:,}"),
        ("cost (USD)", row["cost_usd"]),
        ("reopened", f"{row['reopen_count']} times"),
        ("time to containment", _ms(derived["time_to_containment_ms"])),
        ("time to resolution", _ms(derived["time_to_resolution_ms"])),
        (
            "SLA",
            f"{sla['status']} (target {sla['target_seconds']} s, deadline "
            f"{printable(sla['deadline'])})",
        ),
        ("version", row["version"]),
    ]
    return [Paragraph("Incident", _H2), _facts(pairs)]


def _when_by(at: Any, by: Any, method: Any = None) -> str:
    if at is None:
        return "not yet"
    how = f", {printable(method)}" if method else ""
    return f"{printable(at)} by {printable(by)}{how}"


def _ms(value: int | None) -> str:
    return "not reached" if value is None else f"{value:,} ms"


def _timeline(parts: Mapping[str, Any]) -> list[Flowable]:
    entries = parts["timeline"]
    shown = entries[:PDF_TIMELINE_LIMIT]
    rows = [(entry["at"], entry["kind"], _json_text(entry["data"])) for entry in shown]
    flowables: list[Flowable] = [
        Paragraph(f"Timeline ({len(entries)} entries)", _H2),
        _table(("at", "kind", "data"), rows, (0.27, 0.18, 0.55)),
    ]
    if len(entries) > len(shown):
        flowables.append(
            _prose(f"{len(entries) - len(shown)} more entries are in the JSON bundle.")
        )
    return flowables


def _event_row(event: Mapping[str, Any]) -> tuple[Any, ...]:
    if event.get("type") == "policy_violation":
        what = f"policy {event.get('policy_id')}: {event.get('violated_rule')}"
        detail = f"{event.get('severity')}, {event.get('action_taken') or 'no action'}"
    else:
        what = f"{event.get('provider')}/{event.get('model')}: {event.get('failure_type')}"
        detail = " ".join(printable(event.get(name)) for name in ("error_code", "error_message"))
    return (
        event.get("occurred_at"),
        event.get("event_id"),
        event.get("run_id"),
        what,
        detail,
        event.get("cost_usd"),
    )


def _events(digest: BundleDigest) -> list[Flowable]:
    shown = digest.sample[:PDF_EVENT_LIMIT]
    header = ("occurred_at", "event_id", "run_id", "what", "detail", "cost_usd")
    summary = (
        f"This PDF lists the first {len(shown):,} of the incident's {digest.event_count:,} "
        "events, by occurred_at then event_id"
        + (
            f"; the other {digest.event_count - len(shown):,} are summarised by the counts above."
            if digest.event_count > len(shown)
            else "."
        )
        + " The full evidence, every event with every field, is the JSON bundle of this export "
        "(format=json), whose SHA-256 is printed at the top."
    )
    return [
        Paragraph(f"Events ({digest.event_count:,})", _H2),
        _prose(summary),
        Spacer(1, 3),
        _table(header, [_event_row(event) for event in shown], (0.2, 0.14, 0.1, 0.23, 0.23, 0.1)),
    ]


def _configuration(parts: Mapping[str, Any]) -> list[Flowable]:
    config = parts["configuration"]
    pairs = [
        *config["aggregation"].items(),
        *(
            (f"SLA target {severity} (s)", value)
            for severity, value in config["sla_target_seconds"].items()
        ),
    ]
    return [Paragraph("Configuration the rules ran under", _H2), _facts(pairs)]


def _controls(parts: Mapping[str, Any]) -> list[Flowable]:
    rows = [
        (
            f"{control['control_id']} {control['name']}",
            control["status"],
            "; ".join(
                f"{check['check']}: {'holds' if check['holds'] else 'fails'}"
                for check in control["checks"]
            ),
            _json_text(control["facts"]),
        )
        for control in parts["controls"]
    ]
    attestation = parts["attestation"]
    return [
        Paragraph("SOC 2 incident-response controls", _H2),
        _prose(f"Status rule: {parts['control_status_rule']}."),
        Spacer(1, 3),
        _table(
            ("control", "status", "checks", "facts"), rows, (0.14, 0.12, 0.3, 0.44), PDF_FACT_LIMIT
        ),
        Paragraph("Attestation", _H2),
        _prose(
            f"Attested by {attestation['attested_by']}, at {printable(attestation['attested_at'])}."
        ),
        *(_prose(statement) for statement in attestation["statements"]),
    ]


def _debrief(parts: Mapping[str, Any]) -> list[Flowable]:
    recurrence, sla = parts["recurrence"], parts["sla"]
    pairs = [
        ("what happened", parts["what_happened"]),
        ("risk level", parts["risk_level"]),
        ("severity / state", f"{parts['severity']} / {parts['lifecycle_state']}"),
        ("customers' calls affected", f"{parts['calls_affected']:,}"),
        ("cost (USD)", parts["cost_usd"]),
        ("time to contain", parts["time_to_contain"] or "not yet contained"),
        ("time to resolve", parts["time_to_resolve"] or "not yet resolved"),
        ("SLA", f"{sla['status']} (target {sla['target_seconds']} s)"),
        (
            "recurrence",
            f"{recurrence['previous_incidents']} incidents of fingerprint "
            f"{printable(recurrence['fingerprint'])} in the "
            f"{recurrence['window_days']} days before",
        ),
    ]
    lessons = [
        (lesson["kind"], lesson["state"], lesson["proposed_action"]) for lesson in parts["lessons"]
    ]
    flowables: list[Flowable] = [Paragraph(escape(printable(parts["title"])), _H2), _facts(pairs)]
    flowables.append(Paragraph(f"Lessons ({len(lessons)})", _H2))
    if lessons:
        flowables.append(_table(("kind", "state", "proposed action"), lessons, (0.22, 0.1, 0.68)))
    else:
        flowables.append(_prose("No lesson was drawn from this incident."))
    return flowables


_BODIES: dict[str, Callable[[Mapping[str, Any], BundleDigest], list[Flowable]]] = {
    "evidence": lambda parts, digest: [
        *_incident(parts),
        *_timeline(parts),
        *_events(digest),
        *_configuration(parts),
    ],
    "soc2": lambda parts, digest: [
        *_controls(parts),
        *_incident(parts),
        *_timeline(parts),
        *_events(digest),
        *_configuration(parts),
    ],
    "debrief": lambda parts, digest: _debrief(parts),
}


def render_pdf(parts: Mapping[str, Any], digest: BundleDigest) -> bytes:
    """The PDF of a bundle: `parts` without events (a debrief: the whole bundle) and the digest
    of its JSON file (module docstring). Raises KeyError for an unknown `kind`."""
    body = _BODIES[parts["kind"]](parts, digest)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        invariant=1,
        title=f"{TITLES[parts['kind']]} {parts['bundle_id']}",
        author=str(parts["generated_by"]),
        subject=f"incident {parts['incident_id']}",
        creator=str(parts["generated_by"]),
        producer=str(parts["generated_by"]),
    )
    stamp = _pdf_date(parts["as_of"])
    footer = f"{parts['bundle_id']} | incident {parts['incident_id']} | page "

    def page(canvas: Canvas, doc: BaseDocTemplate) -> None:
        canvas.setDateFormatter(lambda *_: stamp)
        canvas.setFont("Helvetica", 7)
        canvas.drawString(MARGIN, MARGIN / 2, f"{footer}{doc.page}")

    document.build([*_identity(parts, digest), *body], onFirstPage=page, onLaterPages=page)
    return buffer.getvalue()


def _pdf_date(value: datetime) -> str:
    """A PDF date string (`D:YYYYMMDDHHmmSS+00'00'`) of an aware time, in UTC."""
    text = format_time(value)
    digits = text[0:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]
    return f"D:{digits}+00'00'"
