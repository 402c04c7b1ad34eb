"""The wiring of the read API's server processes (`incidentflow api`): each builds its own app,
and its engine, from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from incidentflow.environment import read_settings


def api_from_environment() -> FastAPI:
    """The read API configured from the environment: each server process builds its own."""
    return create_app(read_settings())
