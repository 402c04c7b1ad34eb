"""What `/v1/incidents/{incident_id}/export` answers, as the OpenAPI document describes it.

The handler writes the bundle file itself (`domain.bundles`): these models only document it. A
bundle holds more keys than `Bundle` names (by kind: `incident`, `timeline`, `events`,
`controls`, `what_happened`, ...); README.md and docs/exports.md list them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.bodies import EXAMPLE_ID, examples
from domain.bundles import ALGORITHM
from domain.canonical import FORM
from domain.evidence import BundleKind


class ExportFormat(StrEnum):
    JSON = "json"
    PDF = "pdf"


MEDIA_TYPES = {ExportFormat.JSON: "application/json", ExportFormat.PDF: "application/pdf"}

EXAMPLE_BUNDLE_AS_OF = "2024-05-01T10:05:00.000000Z"
EXAMPLE_HASH = "5d1c0b9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c"


class Integrity(BaseModel):
    algorithm: Literal["sha256"] = Field(description=f"Always {ALGORITHM}.")
    form: Literal["incidentflow-canonical-json/1"] = Field(
        description="The canonical JSON form hashed (docs/exports.md)."
    )
    hash: str = Field(
        pattern="^[0-9a-f]{64}$",
        description="SHA-256 (lower-case hex) of the canonical bytes of `bundle` alone.",
    )


class Bundle(BaseModel):
    """The keys every bundle kind has; the others depend on the kind."""

    model_config = ConfigDict(extra="allow")

    kind: BundleKind
    bundle_id: str = Field(
        description="EVD-, SOC2- or DEB- and 12 hex digits: the same for the same kind, "
        "incident and as_of."
    )
    bundle_version: int
    incident_id: uuid.UUID
    tenant_id: str
    as_of: datetime = Field(description="The read watermark the bundle is made at.")
    generated_at: datetime = Field(description="Equals as_of: nothing reads a clock.")
    generated_by: Literal["incidentflow"]


class BundleFile(BaseModel):
    """A bundle file: the bundle and its integrity hash, in canonical form (no whitespace,
    keys sorted). `incidentflow verify FILE` recomputes the hash."""

    model_config = examples(
        {
            "bundle": {
                "as_of": EXAMPLE_BUNDLE_AS_OF,
                "bundle_id": "EVD-0f6bf46d00b0",
                "bundle_version": 1,
                "configuration": {
                    "aggregation": {"auto_resolve_after_seconds": 900},
                    "sla_target_seconds": {"high": 14400},
                },
                "derived": {
                    "description": "Timeouts on openai/gpt-4o: 12 calls since 2024-05-01 09:00 UTC",
                    "sla": {
                        "deadline": "2024-05-01T13:00:00.000000Z",
                        "status": "met",
                        "target_seconds": 14400,
                    },
                    "time_to_containment_ms": 300000,
                    "time_to_resolution_ms": 2820000,
                },
                "events": [
                    {
                        "type": "llm_call_failure",
                        "event_id": "evt-000001",
                        "occurred_at": "2024-05-01T09:00:00.000000Z",
                        "provider": "openai",
                        "model": "gpt-4o",
                        "failure_type": "timeout",
                        "cost_usd": "0.03500000",
                        "metadata": {"latency_s": "30.5"},
                    }
                ],
                "generated_at": EXAMPLE_BUNDLE_AS_OF,
                "generated_by": "incidentflow",
                "incident": {"incident_id": EXAMPLE_ID, "severity": "high", "calls_affected": 12},
                "incident_id": EXAMPLE_ID,
                "kind": "evidence",
                "tenant_id": "acme",
                "timeline": [
                    {
                        "at": "2024-05-01T09:00:00.000000Z",
                        "data": {"severity": "low"},
                        "kind": "created",
                    },
                ],
            },
            "integrity": {"algorithm": ALGORITHM, "form": FORM, "hash": EXAMPLE_HASH},
        }
    )

    bundle: Bundle
    integrity: Integrity
