"""domain.incidents: the severity rank."""

from __future__ import annotations

from domain.contracts import Severity
from domain.incidents import SEVERITY_RANK


def test_severity_rank_is_not_lexical() -> None:
    ranked = sorted(SEVERITY_RANK, key=SEVERITY_RANK.__getitem__)
    assert ranked == ["low", "medium", "high", "critical"] != sorted(SEVERITY_RANK)
    assert set(SEVERITY_RANK) == {severity.value for severity in Severity}
