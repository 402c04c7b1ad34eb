"""api.auth: every route reads `as_of` after the key, so that it costs no query of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.app import ROUTERS
from api.auth import request_as_of, tenant_scope


def calls_in_order(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    """The dependency callables in the order FastAPI resolves them (depth first)."""
    for dependency in dependant.dependencies:
        yield from calls_in_order(dependency)
        yield dependency.call


def test_every_route_with_as_of_authenticates_first() -> None:
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    checked = 0
    for route in routes:
        calls = list(calls_in_order(route.dependant))
        if request_as_of in calls:
            assert tenant_scope in calls[: calls.index(request_as_of)], route.path
            checked += 1
    assert checked >= 15
