"""The JSON Schemas of the contracts (the three input topics, the change feed and the lesson
commands topic), generated from the pydantic models.

The files in `schemas/` are generated, never edited: `incidentflow schemas --out schemas/` rewrites
them and `tests/unit/test_schemas.py` fails while they differ from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from domain.contracts import LifecycleCommand, LlmCallFailure, PolicyViolation
from domain.lesson_triage import LessonCommand
from domain.snapshot import IncidentSnapshot

SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "llm_call_failure": LlmCallFailure,
    "policy_violation": PolicyViolation,
    "incident_command": LifecycleCommand,
    "incident_snapshot": IncidentSnapshot,
    "lesson_command": LessonCommand,
}


def render_schema(model: type[BaseModel]) -> str:
    """The model's validation JSON Schema: sorted keys, two-space indent, trailing newline."""
    schema: dict[str, Any] = model.model_json_schema()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(out: Path) -> list[Path]:
    """Write `<type>.schema.json` for each contract into `out` (created if missing).

    Returns the written paths in `SCHEMA_MODELS` order; an existing file is overwritten.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMA_MODELS.items():
        path = out / f"{name}.schema.json"
        path.write_text(render_schema(model), encoding="utf-8")
        written.append(path)
    return written
