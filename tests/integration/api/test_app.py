"""Property-based test over the OpenAPI document: any parameters the schema declares (in range or
not) give no 5xx, and every answer fits the documented schema (success body or error body)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from domain.lessons import lesson_id
from tests.integration.api_dataset import AS_OF, Client, Dataset


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional parameter's schema."""
    for branch in schema.get("anyOf", []):
        if branch.get("type") != "null":
            return {**schema, **branch}
    return schema


def _resolve(schema: dict[str, Any], openapi: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        resolved: dict[str, Any] = openapi["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def sendable_text(
    exclude: str = "", min_size: int = 0, max_size: int | None = None
) -> st.SearchStrategy[str]:
    """Text a client can send: no lone surrogate, which has no UTF-8 form."""
    characters = st.characters(exclude_characters=exclude, exclude_categories=("Cs",))
    return st.text(characters, min_size=min_size, max_size=max_size)


def value_strategy(schema: dict[str, Any], openapi: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values for one parameter: mostly valid for its schema, sometimes not."""
    schema = _resolve(_plain(schema), openapi)
    junk = sendable_text(max_size=12)
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), junk)
    kind = schema.get("type")
    if kind == "integer":
        low, high = schema.get("minimum", -(2**31)), schema.get("maximum", 2**31)
        return st.one_of(
            st.integers(low, high), st.integers(low - 5, high + 5), st.integers(), junk
        )
    if kind == "boolean":
        return st.sampled_from(["true", "false", "1", "0", "yes", "off", "maybe"])
    if schema.get("format") == "date-time":
        moments = st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        )
        near = st.timedeltas(timedelta(days=-60), timedelta(days=60)).map(lambda d: AS_OF + d)
        return st.one_of(moments, near).map(datetime.isoformat) | junk
    if schema.get("format") == "uuid":
        return st.uuids().map(str) | junk
    return sendable_text(max_size=schema.get("maxLength", 50) + 2)


def request_strategy(
    openapi: dict[str, Any], data: Dataset
) -> st.SearchStrategy[tuple[str, str, dict[str, Any], str]]:
    """(path template, concrete path, query parameters, who) over every documented GET path."""
    # One path segment: no "/" and not a dot segment (a client would normalise those away).
    segment = sendable_text(exclude="/", min_size=1).filter(lambda text: text not in (".", ".."))
    known_ids = st.sampled_from([str(i.incident_id) for i in data.incidents.values()])
    known_lessons = st.just(str(lesson_id("severe_incident_resolved", "acme", data.id("r3"))))

    @st.composite
    def build(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], str]:
        template = draw(st.sampled_from(sorted(openapi["paths"])))
        operation = openapi["paths"][template]["get"]
        path, query = template, {}
        for param in operation.get("parameters", []):
            name, where = param["name"], param["in"]
            if where == "path":
                value = draw(known_ids | st.uuids().map(str)) if name == "incident_id" else None
                if name == "lesson_id":
                    value = draw(known_lessons | st.uuids().map(str) | segment)
                if value is None:
                    value = draw(st.sampled_from(["run-1", "run-2", "x"]) | segment)
                path = path.replace("{" + name + "}", quote(value, safe=""))
            elif where == "query" and draw(st.booleans()):
                query[name] = draw(value_strategy(param["schema"], openapi))
        return template, path, query, draw(st.sampled_from(["acme", "ops", "globex"]))

    return build()


def check_body(
    openapi: dict[str, Any], template: str, response: httpx.Response, query: dict[str, Any]
) -> None:
    responses = openapi["paths"][template]["get"]["responses"]
    documented = responses.get(str(response.status_code))
    assert documented is not None, (template, response.status_code, response.text)
    contents = documented.get("content", {})
    if not contents:
        return
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in {name.split(";")[0] for name in contents}, (template, media_type)
    if media_type != "application/json":
        return
    schema = {**contents[media_type]["schema"], "components": openapi["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(response.json()), key=str)
    assert not errors, (template, query, response.text[:500], [e.message for e in errors[:3]])


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_5xx_and_every_answer_fits_the_schema(api: Client, data: st.DataObject) -> None:
    client, dataset = api
    openapi = (await client.get("/openapi.json")).json()
    template, path, query, who = data.draw(request_strategy(openapi, dataset))
    response = await client.get(path, params=query, headers=dataset.auth(who))
    assert response.status_code < 500, (path, query, response.text)
    assert response.headers["content-type"].startswith(
        ("application/json", "text/plain", "application/pdf")  # PDF: an export, format=pdf
    )
    check_body(openapi, template, response, query)
    if response.status_code == 422:
        field = response.json()["error"]["field"]
        assert field in {p["name"] for p in openapi["paths"][template]["get"]["parameters"]}
