"""Response bodies of `/v1/lessons`, `/v1/lessons/stats` and `/v1/lessons/{lesson_id}`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.bodies import EXAMPLE_AS_OF, EXAMPLE_ID, AsOfTime, examples
from domain.lesson_triage import LessonAction, LessonState
from domain.lessons import LessonKind

SUMMARY_INCIDENT_IDS = 10
"""Incident ids a listed lesson shows (the detail shows them all)."""

EXAMPLE_LESSON_ID = "5f0c8a39-4d6e-5b1a-8e2f-3c7d9a1b2e40"

_SUMMARY_EXAMPLE: dict[str, Any] = {
    "lesson_id": EXAMPLE_LESSON_ID,
    "tenant_id": "acme",
    "kind": "severe_incident_resolved",
    "subject": EXAMPLE_ID,
    "state": "pending",
    "deferred_until": None,
    "incident_count": 1,
    "incident_ids": [EXAMPLE_ID],
    "proposed_action": 'Review the critical incident "LLM call failures: openai/gpt-4o/timeout" '
    "(250 calls, resolved by hand after 47 min): record its cause and add a guard (a policy, an "
    "alert or a fallback) so that it does not happen again.",
    "first_seen": "2024-05-01T09:00:00Z",
    "last_seen": "2024-05-01T09:40:00Z",
    "changed_at": None,
    "changed_by": None,
}


class LessonSummary(BaseModel):
    """A lesson as lists show it."""

    model_config = examples(_SUMMARY_EXAMPLE)

    lesson_id: uuid.UUID
    tenant_id: str
    kind: LessonKind
    subject: str = Field(
        description="What the lesson is about: the incident id, or the fingerprint for "
        "recurring_fingerprint."
    )
    state: LessonState = Field(
        description="At as_of: a deferred lesson whose deferred_until has come is pending."
    )
    deferred_until: datetime | None = Field(description="Set while the lesson is deferred.")
    incident_count: int = Field(ge=1)
    incident_ids: list[uuid.UUID] = Field(
        description=f"The incidents behind it by start, at most {SUMMARY_INCIDENT_IDS} here."
    )
    proposed_action: str
    first_seen: datetime = Field(description="The earliest started_at of its incidents.")
    last_seen: datetime = Field(description="The latest last_event_at of its incidents.")
    changed_at: datetime | None = Field(description="issued_at of the last applied command.")
    changed_by: str | None


class LessonList(BaseModel):
    """One page of lessons, newest first (first_seen, then lesson_id, descending)."""

    model_config = examples(
        {
            "items": [_SUMMARY_EXAMPLE],
            "total": 1,
            "has_more": False,
            "next_offset": None,
            "limit": 20,
            "offset": 0,
            "filters_applied": {"tenant_id": "acme", "state": "pending"},
            "as_of": EXAMPLE_AS_OF,
        }
    )

    items: list[LessonSummary]
    total: int = Field(ge=0, description="Lessons matching the filters (all pages).")
    has_more: bool
    next_offset: int | None = Field(description="`offset` of the next page; null on the last.")
    limit: int
    offset: int
    filters_applied: dict[str, Any]
    as_of: AsOfTime


class AppliedCommand(BaseModel):
    command_id: str
    action: LessonAction
    issued_at: datetime
    issued_by: str
    until: datetime | None
    policy_draft: str | None
    note: str | None


class LessonDetail(LessonSummary):
    """A lesson with every incident behind it, its triage record and the commands applied."""

    model_config = examples(
        _SUMMARY_EXAMPLE
        | {
            "state": "converted",
            "policy_draft": "block retries of gpt-4o timeouts after 3 attempts",
            "note": "agreed in the weekly review",
            "changed_at": "2024-05-01T10:00:00Z",
            "changed_by": "alice",
            "commands": 1,
            "history": [
                {
                    "command_id": "c-7",
                    "action": "convert",
                    "issued_at": "2024-05-01T10:00:00Z",
                    "issued_by": "alice",
                    "until": None,
                    "policy_draft": "block retries of gpt-4o timeouts after 3 attempts",
                    "note": "agreed in the weekly review",
                }
            ],
            "as_of": EXAMPLE_AS_OF,
        }
    )

    incident_ids: list[uuid.UUID] = Field(description="Every incident behind it, by start.")
    policy_draft: str | None = Field(description="Set once converted.")
    note: str | None = Field(description="The note of the last applied command.")
    commands: int = Field(ge=0, description="Commands applied to it.")
    history: list[AppliedCommand] = Field(description="Applied commands by issued_at.")
    as_of: AsOfTime


class LessonStatsBody(BaseModel):
    """The tenant's lessons counted by state at as_of and by kind; every state and kind is
    present, zeros included."""

    model_config = examples(
        {
            "total": 3,
            "by_state": {"pending": 2, "deferred": 0, "dismissed": 1, "converted": 0},
            "by_kind": {
                "severe_incident_resolved": 1,
                "reopened": 1,
                "recurring_fingerprint": 1,
                "overflow": 0,
            },
            "by_kind_and_state": {
                "severe_incident_resolved": {
                    "pending": 1, "deferred": 0, "dismissed": 0, "converted": 0,
                },
                "reopened": {"pending": 0, "deferred": 0, "dismissed": 1, "converted": 0},
                "recurring_fingerprint": {
                    "pending": 1, "deferred": 0, "dismissed": 0, "converted": 0,
                },
                "overflow": {"pending": 0, "deferred": 0, "dismissed": 0, "converted": 0},
            },
            "as_of": EXAMPLE_AS_OF,
        }
    )  # fmt: skip

    total: int = Field(ge=0)
    by_state: dict[str, int]
    by_kind: dict[str, int]
    by_kind_and_state: dict[str, dict[str, int]]
    as_of: AsOfTime
