"""What a customer reads of an incident that cost money: its status, urgency, title and
recommendation in calm words, and the trend of its category's spend. Pure functions.

The status follows from the incident's state and trigger (first match wins):

- `resolved`: the incident is RESOLVED; it no longer adds cost;
- `protected`: it is open (ACTIVE or ACKED) and its trigger is `budget_breach`: the budget limit
  refuses the calls, so the incident stops spending while the limit holds;
- `attention_needed`: it is open with any other trigger: calls are still failing, and they cost
  (acknowledging an incident stops none of them).

The urgency is the severity in calm words (critical `urgent`, high `action`, medium `attention`,
low `info`). The trend is the one `/v1/costs/explained` shows for the
incident's category over `TREND_PERIOD`: its daily spend in that period against its daily average
over the 30 days before (`domain.spend.key_trend`); a category without spend in the period is
`normal`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum

from domain.contracts import Severity
from domain.incidents import OVERFLOW_TRIGGER, LifecycleState
from domain.spend import KeySpend, Period, Trend, key_trend

TREND_PERIOD = Period.SEVEN_DAYS
BUDGET_TRIGGER = "budget_breach"
RATE_LIMIT_TRIGGER = "rate_limit"
POLICY_TRIGGERS = ("content_policy", "policy_violation")


class CostStatus(StrEnum):
    PROTECTED = "protected"
    ATTENTION_NEEDED = "attention_needed"
    RESOLVED = "resolved"


class Urgency(StrEnum):
    URGENT = "urgent"
    ACTION = "action"
    ATTENTION = "attention"
    INFO = "info"


URGENCY: dict[str, Urgency] = {
    Severity.CRITICAL: Urgency.URGENT,
    Severity.HIGH: Urgency.ACTION,
    Severity.MEDIUM: Urgency.ATTENTION,
    Severity.LOW: Urgency.INFO,
}

TITLES = {
    BUDGET_TRIGGER: "Budget limit reached",
    RATE_LIMIT_TRIGGER: "Spending on rate-limited calls",
    "content_policy": "Spending on filtered calls",
    "policy_violation": "Spending on calls that broke a policy",
    OVERFLOW_TRIGGER: "Unusual spending across many incidents",
}
"""Titles by trigger; any other trigger (LLM call failures) reads `DEFAULT_TITLE`."""
DEFAULT_TITLE = "Unusual spending detected"

EXPLAINED = "Review your usage in Cost Explained to see which models and agents drive this spend"
RECOMMENDATIONS = {
    RATE_LIMIT_TRIGGER: "Slow your request rate or raise your provider's rate limit",
    "content_policy": "Review the prompts behind these calls: their outputs are being filtered",
    "policy_violation": "Review the calls that broke this policy and the agents behind them",
}
"""What to do about an incident that needs attention, by trigger (any other: `EXPLAINED`)."""
PROTECTED_RECOMMENDATION = "Increase your budget or pause operations to resume spending"
RESOLVED_RECOMMENDATION = "No action needed: this incident no longer adds cost"


def cost_status(lifecycle_state: str, trigger_type: str) -> CostStatus:
    """The status (module docstring)."""
    if lifecycle_state == LifecycleState.RESOLVED:
        return CostStatus.RESOLVED
    if trigger_type == BUDGET_TRIGGER:
        return CostStatus.PROTECTED
    return CostStatus.ATTENTION_NEEDED


def urgency(severity: str) -> Urgency:
    """The severity in calm words; a severity this version does not know reads `info`."""
    return URGENCY.get(severity, Urgency.INFO)


def title(trigger_type: str) -> str:
    return TITLES.get(trigger_type, DEFAULT_TITLE)


def recommendation(status: CostStatus, trigger_type: str) -> str:
    """What the customer can do now."""
    if status is CostStatus.RESOLVED:
        return RESOLVED_RECOMMENDATION
    if status is CostStatus.PROTECTED:
        return PROTECTED_RECOMMENDATION
    return RECOMMENDATIONS.get(trigger_type, EXPLAINED)


def category_trends(
    categories: Iterable[str], keys: Iterable[KeySpend], elapsed: Decimal
) -> dict[str, Trend]:
    """The trend of each of `categories` from the spend per key of the period (`elapsed` days of
    it so far; its `category` rows, other dimensions are ignored): `normal` for a category
    without spend in the period."""
    trends = {key.key: key_trend(key, elapsed) for key in keys if key.dimension == "category"}
    return {category: trends.get(category, "normal") for category in categories}
