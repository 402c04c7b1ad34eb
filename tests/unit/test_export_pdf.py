"""PDF renderings of the export bundles: what they print, and that they are reproducible."""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from api.exports.pdf import PDF_EVENT_LIMIT, printable, render_pdf
from domain.bundles import BundleDigest, digest_bundle
from domain.canonical import canonical_hash
from domain.debrief import Recurrence, debrief
from domain.evidence import BundleSource, evidence_event, evidence_parts
from domain.soc2 import soc2_parts
from tests.evidence_rows import INCIDENT_ID, T0, failure_rows, source


def pdf_of(kind: str, bundle_source: BundleSource | None = None, events: int = 12) -> bytes:
    chosen = bundle_source or source()
    if kind == "debrief":
        page = debrief(chosen, Recurrence(30, 2))
        return render_pdf(page, BundleDigest(canonical_hash(page), 0))
    parts = evidence_parts(chosen) if kind == "evidence" else soc2_parts(chosen)
    rows = map(evidence_event, failure_rows(events))
    return render_pdf(parts, digest_bundle(parts, rows, sample=PDF_EVENT_LIMIT))


def text_of(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def flat(text: str) -> str:
    """The text with line breaks (where the PDF wrapped) as single spaces."""
    return " ".join(text.split())


def json_hash(kind: str) -> str:
    chosen = source()
    if kind == "debrief":
        return canonical_hash(debrief(chosen, Recurrence(30, 2)))
    parts = evidence_parts(chosen) if kind == "evidence" else soc2_parts(chosen)
    return digest_bundle(parts, map(evidence_event, failure_rows(12))).hexdigest


@pytest.mark.parametrize("kind", ["evidence", "soc2", "debrief"])
def test_the_pdf_prints_the_incident_id_and_the_json_bundles_hash_on_a_line_each(
    kind: str,
) -> None:
    lines = text_of(pdf_of(kind)).splitlines()
    assert f"Incident: {INCIDENT_ID}" in lines
    assert f"Integrity (SHA-256): {json_hash(kind)}" in lines


@pytest.mark.parametrize("kind", ["evidence", "soc2", "debrief"])
def test_the_same_inputs_give_the_same_bytes_dated_as_of(kind: str) -> None:
    first = pdf_of(kind)
    assert pdf_of(kind) == first
    metadata = PdfReader(io.BytesIO(first)).metadata
    assert metadata is not None
    assert metadata["/CreationDate"] == metadata["/ModDate"] == "D:20261122120000+00'00'"
    assert metadata["/Producer"] == "incidentflow"
    later = dataclasses.replace(source(), as_of=source().as_of + timedelta(minutes=1))
    assert pdf_of(kind, later) != first


def test_a_large_incident_lists_a_bounded_number_of_events_and_says_where_the_rest_is() -> None:
    parts = evidence_parts(source(calls_affected=100_000))
    sample = tuple(map(evidence_event, failure_rows(PDF_EVENT_LIMIT)))
    text = flat(text_of(render_pdf(parts, BundleDigest("ab" * 32, 100_000, sample))))
    assert f"This PDF lists the first {PDF_EVENT_LIMIT} of the incident's 100,000 events" in text
    assert "the other 99,900 are summarised by the counts above" in text
    assert "The full evidence, every event with every field, is the JSON bundle" in text
    assert "evt-000099" in text
    assert "evt-000100" not in text


def test_the_soc2_pdf_shows_the_controls_and_the_attestation() -> None:
    text = flat(text_of(pdf_of("soc2")))
    for control in ("CC7.2 Detection", "CC7.3 Evaluation", "CC7.4 Response", "CC7.5 Recovery"):
        assert control in text
    assert "Attestation" in text
    assert "3. The incident was reopened 0 times." in text


def test_the_debrief_pdf_is_one_page() -> None:
    data = pdf_of("debrief")
    assert len(PdfReader(io.BytesIO(data)).pages) == 1
    assert "what happened" in text_of(data)


def test_a_long_timeline_is_cut_and_says_so() -> None:
    entries: list[Any] = [
        {"kind": "fingerprint_merged", "at": T0, "data": {"n": index}} for index in range(250)
    ]
    text = flat(text_of(pdf_of("evidence", dataclasses.replace(source(), timeline=entries))))
    assert "Timeline (250 entries)" in text
    assert "50 more entries are in the JSON bundle." in text


def test_text_outside_latin_1_is_printed_as_escapes() -> None:
    assert printable("Fehler é 中文 😀") == "Fehler é \\u4e2d\\u6587 \\U0001f600"
    assert printable("line\nbreak\tand\x01") == "line break and\\u0001"
    assert printable("x" * 400) == "x" * 300 + "..."
    assert printable(None) == ""
    text = text_of(pdf_of("evidence", source(title="Fehler 中文")))
    assert "Fehler \\u4e2d\\u6587" in text


def test_stored_text_is_printed_literally_never_as_markup() -> None:
    title = '<b>x</b> & <font size="90">big</font> <para'
    text = flat(text_of(pdf_of("debrief", source(title=title))))
    assert title in text


def test_an_unknown_kind_is_refused() -> None:
    parts = {**evidence_parts(source()), "kind": "memo"}
    with pytest.raises(KeyError):
        render_pdf(parts, BundleDigest("00" * 32, 0))
