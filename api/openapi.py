"""The OpenAPI document, with the response bodies' examples as the models state them.

FastAPI drops every `null` from the document it generates (it encodes it with `exclude_none`), so
an example such as `{"acked_at": null, ...}` would lose its nullable fields and no longer fit its
own schema. `documented_openapi` generates the document as FastAPI does, then puts back each
response model's examples exactly as pydantic gives them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel


def documented_openapi(app: FastAPI, routers: Iterable[APIRouter]) -> dict[str, Any]:
    """The app's OpenAPI document (built once, then cached on the app like FastAPI's own), with
    the examples of the models that `routers` answer with."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description=app.description,
            routes=app.routes,
        )
        _restore_examples(
            document.get("components", {}).get("schemas", {}), _response_models(routers)
        )
        app.openapi_schema = document
    return app.openapi_schema


def _response_models(routers: Iterable[APIRouter]) -> Iterator[type[BaseModel]]:
    """The models of every documented answer: each route's response model and extra responses."""
    for route in (route for router in routers for route in router.routes):
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        candidates = [route.response_model]
        candidates += [response.get("model") for response in route.responses.values()]
        for candidate in candidates:
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                yield candidate


def _restore_examples(components: dict[str, Any], models: Iterator[type[BaseModel]]) -> None:
    """Replace the examples of each component named after a model (or a model it nests) with
    pydantic's, nulls included."""
    for model in models:
        schema = model.model_json_schema(mode="serialization")
        for name, definition in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            if "examples" in definition and name in components:
                components[name]["examples"] = definition["examples"]
