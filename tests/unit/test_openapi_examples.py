"""Every GET path documents an example of its answer, and the example fits the answer's schema.

The OpenAPI is built from the application without a database: examples live on the response
bodies (`api/*/bodies.py`) or, for the Prometheus text, on the route. FastAPI would drop the nulls
of every example (`api/openapi.py`); fitting the schema checks that they are back.
"""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from api.app import create_app
from domain.settings import Settings

OPENAPI: dict[str, Any] = create_app(Settings()).openapi()


def _resolved(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        resolved: dict[str, Any] = OPENAPI["components"]["schemas"][schema["$ref"].rsplit("/")[-1]]
        return resolved
    return schema


def _examples(media: dict[str, Any]) -> list[Any]:
    """The examples documented for one answer: on the media type or on its (referenced) schema."""
    if "example" in media:
        return [media["example"]]
    if "examples" in media:
        return [example["value"] for example in media["examples"].values()]
    return list(_resolved(media.get("schema", {})).get("examples", []))


PATHS = sorted(OPENAPI["paths"])


@pytest.mark.parametrize("path", PATHS)
def test_the_answer_of_every_path_has_an_example_that_fits_its_schema(path: str) -> None:
    contents = OPENAPI["paths"][path]["get"]["responses"]["200"].get("content", {})
    assert contents, f"{path}: 200 documents no content"
    for media_type, media in contents.items():
        if media.get("schema", {}).get("format") == "binary":
            continue  # a file (the export's PDF): its example is the JSON bundle it renders
        found = _examples(media)
        assert found, f"{path}: no example for {media_type}"
        if not media_type.startswith("application/json"):
            continue
        schema = {**media["schema"], "components": OPENAPI["components"]}
        for example in found:
            errors = [error.message for error in Draft202012Validator(schema).iter_errors(example)]
            assert not errors, (path, errors[:3])
