"""Every error of the read API as JSON: `{"error": {"code", "message", "field"?}}`.

Codes: 401 `unauthorized`, 404 `not_found`, 422 `invalid_parameter` (with the field at fault),
405 `method_not_allowed`, 500 `internal_error` (no details). Bad input never reaches a 500: the
request validation handler turns every pydantic error into a 422 naming the parameter.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("incidentflow.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    422: "invalid_parameter",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """An error with its HTTP status, code, message and (for bad parameters) field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, unknown or revoked API key."},
    404: {"model": ErrorBody, "description": "No such resource for this tenant."},
    422: {"model": ErrorBody, "description": "Invalid parameter, named in `error.field`."},
}
"""`responses=` for every authenticated router: the error bodies in the OpenAPI document."""


def unauthorized(message: str = "missing or invalid API key") -> ApiError:
    return ApiError(401, "unauthorized", message)


def not_found(message: str = "not found") -> ApiError:
    return ApiError(404, "not_found", message)


def invalid_parameter(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_parameter", message, field)


def error_response(
    status: int, code: str, message: str, field: str | None = None, **headers: str
) -> JSONResponse:
    detail: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        detail["field"] = field
    return JSONResponse({"error": detail}, status_code=status, headers=headers or None)


def _field_of(error: dict[str, Any]) -> str:
    """The parameter name of a pydantic error location such as ("query", "limit")."""
    loc = [str(part) for part in error.get("loc", ())]
    if loc and loc[0] in ("query", "path", "header", "cookie", "body"):
        loc = loc[1:]
    return ".".join(loc) or "request"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    return error_response(exc.status, exc.code, exc.message, exc.field, **headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0] if errors else {}
    field = _field_of(first)
    message = f"{field}: {first.get('msg', 'invalid value')}"
    return error_response(422, "invalid_parameter", message, field)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    headers = dict(exc.headers or {})
    message = exc.detail if isinstance(exc.detail, str) else code
    return error_response(exc.status_code, code, message, **headers)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on `app`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
