"""The scenario log the ingest worker's end-to-end tests share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.e2e.pipeline import PARTITIONS
from tests.scenario import build_scenario, expected

SCENARIO_NOW = datetime.now(UTC).replace(microsecond=0)
"""The wall clock the scenario is built and replayed at."""


@pytest.fixture(scope="module")
def scenario():
    """The realistic scenario log (seed 7) and what replaying it must give."""
    messages = build_scenario(7, now=SCENARIO_NOW)
    return messages, expected(messages, PARTITIONS, SCENARIO_NOW)
