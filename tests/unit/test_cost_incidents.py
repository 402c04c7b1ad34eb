"""domain.cost_incidents: the status, urgency, texts and category trend of a cost incident."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain import cost_incidents as c
from domain.cost_incidents import CostStatus, Urgency
from domain.spend import KeySpend

TRIGGERS = (
    "llm_failure", "rate_limit", "budget_breach", "content_policy", "policy_violation",
    "rate_limit_overflow", "a_trigger_added_later",
)  # fmt: skip


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_the_status_follows_the_state_then_the_trigger(trigger: str) -> None:
    assert c.cost_status("RESOLVED", trigger) is CostStatus.RESOLVED
    for state in ("ACTIVE", "ACKED"):
        expected = (
            CostStatus.PROTECTED if trigger == "budget_breach" else CostStatus.ATTENTION_NEEDED
        )
        assert c.cost_status(state, trigger) is expected


def test_the_urgency_is_the_severity_in_calm_words() -> None:
    assert [c.urgency(s) for s in ("critical", "high", "medium", "low")] == [
        Urgency.URGENT, Urgency.ACTION, Urgency.ATTENTION, Urgency.INFO,
    ]  # fmt: skip
    assert c.urgency("CRITICAL") is Urgency.INFO  # severities are lower case; nothing else is one


def test_every_trigger_has_a_title_and_each_status_a_recommendation() -> None:
    assert c.title("budget_breach") == "Budget limit reached"
    assert c.title("llm_failure") == c.title("a_trigger_added_later") == c.DEFAULT_TITLE
    assert len({c.title(trigger) for trigger in TRIGGERS}) == len(TRIGGERS) - 1
    for trigger in TRIGGERS:
        assert c.recommendation(CostStatus.RESOLVED, trigger) == c.RESOLVED_RECOMMENDATION
    assert c.recommendation(CostStatus.PROTECTED, "budget_breach") == (
        "Increase your budget or pause operations to resume spending"
    )
    assert c.recommendation(CostStatus.ATTENTION_NEEDED, "llm_failure") == c.EXPLAINED
    assert "rate limit" in c.recommendation(CostStatus.ATTENTION_NEEDED, "rate_limit")


def key(dimension: str, name: str, cost: str, baseline: str) -> KeySpend:
    return KeySpend(dimension, name, 1, 1, Decimal(cost), Decimal(baseline))


def test_a_category_trend_compares_its_daily_spend_with_its_own_baseline() -> None:
    keys = [
        key("category", "LLM_TIMEOUT", "70", "30"),  # 10/day against 1/day: spike
        key("category", "RATE_LIMIT", "14", "30"),  # 2/day against 1/day: +100%, rising
        key("category", "POLICY_PII", "7", "30"),  # as usual
        key("category", "NEW", "7", "0"),  # no baseline: normal
        key("model", "LLM_ERROR", "700", "0"),  # another dimension with a category's name
    ]
    trends = c.category_trends(
        ["LLM_TIMEOUT", "RATE_LIMIT", "POLICY_PII", "NEW", "LLM_ERROR"], keys, Decimal(7)
    )
    assert trends == {
        "LLM_TIMEOUT": "spike",
        "RATE_LIMIT": "rising",
        "POLICY_PII": "normal",
        "NEW": "normal",
        "LLM_ERROR": "normal",  # no spend in the period
    }
