"""Generated text about an incident: its one-line description, durations, times. Pure functions.

`describe` writes a one-line description such as
`Timeouts on openai/gpt-4o: 12 calls since 2026-11-22 10:00 UTC` from the incident's own fields
only, so that a replay of the same log writes the same text:

- `trigger_type` and `category`: *what* (`CATEGORY_PHRASES`; a policy category `POLICY_<TYPE>`
  reads `Policy violations (<TYPE>)`, any other `Incidents (<CATEGORY>)`);
- for LLM failures, the calls per provider/model of the incident's breakdown (`model_calls`):
  *where*, the model with the most calls (ties: the first by name) and how many other models had
  calls; without a breakdown, and for policy violations, the `fingerprint` (by default
  `provider/model/failure_type`, or the policy id);
- `calls_affected`: *how many calls*;
- `started_at`: *since when*, to the minute, in UTC.

The overflow incident has no single *where*: it gathers the events that the hourly cap turned
away from new incidents. `describe_incident` reads these fields from an `Incident` (the aggregator
writes its `description` so when it hands a touched incident over), `describe_row` from an
`incidents` row: both give the same text for the same incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.incidents import BREAKDOWN_OTHER, OVERFLOW_TRIGGER, Incident

CATEGORY_PHRASES: dict[str, str] = {
    "LLM_TIMEOUT": "Timeouts",
    "LLM_ERROR": "Errors",
    "INVALID_OUTPUT": "Invalid outputs",
    "PROVIDER_OUTAGE": "Provider unavailable",
    "RATE_LIMIT": "Rate limiting",
    "BUDGET_EXCEEDED": "Budget exceeded",
    "CONTENT_POLICY": "Content filtered",
    "POLICY_VIOLATION": "Policy violations",
}
"""What each category's incidents are, as the description's opening words."""
OVERFLOW_PHRASE = "Events past the hourly incident cap"
POLICY_PREFIX = "POLICY_"
POLICY_TRIGGER = "policy_violation"


def describe(
    *,
    trigger_type: str,
    category: str,
    fingerprint: str,
    calls_affected: int,
    started_at: datetime,
    model_calls: Mapping[str, int],
) -> str:
    """The one-line description of an incident (module docstring)."""
    amount = f"{calls_affected:,} call{'' if calls_affected == 1 else 's'}"
    since = format_minute(started_at)
    if trigger_type == OVERFLOW_TRIGGER:
        return f"{OVERFLOW_PHRASE}: {amount} since {since}"
    where = fingerprint if trigger_type == POLICY_TRIGGER else _top_model(model_calls, fingerprint)
    return f"{_what(category)} on {where}: {amount} since {since}"


def describe_incident(incident: Incident) -> str:
    """`describe` of an incident's current state."""
    models = incident.breakdown.get("model") or {}
    return describe(
        trigger_type=incident.trigger_type,
        category=incident.category,
        fingerprint=incident.fingerprint,
        calls_affected=incident.calls_affected,
        started_at=incident.started_at,
        model_calls={name: entry.calls for name, entry in models.items()},
    )


def describe_row(row: Mapping[str, Any]) -> str:
    """`describe` of an `incidents` row (its `breakdown` as the jsonb column holds it)."""
    models = (row.get("breakdown") or {}).get("model") or {}
    return describe(
        trigger_type=row["trigger_type"],
        category=row["category"],
        fingerprint=row["fingerprint"],
        calls_affected=row["calls_affected"],
        started_at=row["started_at"],
        model_calls={name: int(entry["calls"]) for name, entry in models.items()},
    )


def _what(category: str) -> str:
    phrase = CATEGORY_PHRASES.get(category)
    if phrase is not None:
        return phrase
    if category.startswith(POLICY_PREFIX):
        return f"Policy violations ({category.removeprefix(POLICY_PREFIX)})"
    return f"Incidents ({category})"


def _top_model(model_calls: Mapping[str, int], fingerprint: str) -> str:
    named = {name: calls for name, calls in model_calls.items() if name != BREAKDOWN_OTHER}
    if not named:
        return fingerprint
    top = min(named.items(), key=lambda item: (-item[1], item[0]))[0]
    others = len(named) - 1
    if BREAKDOWN_OTHER in model_calls:  # past the breakdown's named keys: at least one more
        return f"{top} and more than {others} other models"
    if others == 0:
        return top
    return f"{top} and {others} other model{'' if others == 1 else 's'}"


def format_minute(value: datetime) -> str:
    """`2026-11-22 10:00 UTC`: an aware time to the minute (seconds dropped), in UTC."""
    utc = value.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} {utc.hour:02d}:{utc.minute:02d} UTC"


def format_duration(value: timedelta) -> str:
    """A duration in words people read at a glance: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.

    Whole units, rounded down; negative durations (a clock error upstream) read as `0 s`.
    """
    seconds = max(0, value // timedelta(seconds=1))
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 60:
        return f"{minutes} min"
    if hours < 48:
        return f"{hours} h" + (f" {minutes % 60} min" if minutes % 60 else "")
    return f"{days} d" + (f" {hours % 24} h" if hours % 24 else "")
