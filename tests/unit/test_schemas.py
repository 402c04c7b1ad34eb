"""The committed JSON Schemas in `schemas/` equal the ones generated from the contracts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from incidentflow.schemas import SCHEMA_MODELS, write_schemas

COMMITTED = Path(__file__).resolve().parents[2] / "schemas"
REGENERATE = "regenerate them with `incidentflow schemas --out schemas/` and commit the result"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("schemas")
    return {path.name: path.read_text(encoding="utf-8") for path in write_schemas(out)}


def test_every_contract_has_a_schema_file(generated: dict[str, str]) -> None:
    assert sorted(generated) == sorted(f"{name}.schema.json" for name in SCHEMA_MODELS)


@pytest.mark.parametrize("name", [f"{name}.schema.json" for name in SCHEMA_MODELS])
def test_committed_schema_is_current(generated: dict[str, str], name: str) -> None:
    committed = COMMITTED / name
    assert committed.is_file(), f"schemas/{name} is missing: {REGENERATE}"
    assert committed.read_text(encoding="utf-8") == generated[name], (
        f"schemas/{name} differs from the pydantic model: {REGENERATE}"
    )


def test_schemas_are_sorted_json_with_a_trailing_newline(generated: dict[str, str]) -> None:
    for text in generated.values():
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_failure_schema_names_the_required_fields(generated: dict[str, str]) -> None:
    schema = json.loads(generated["llm_call_failure.schema.json"])
    required = set(schema["required"])
    assert {"event_id", "tenant_id", "occurred_at", "run_id", "provider", "model"} <= required
    assert "failure_type" in required
