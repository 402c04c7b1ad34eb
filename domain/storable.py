"""Values PostgreSQL and JSON can hold: the checks the input contracts are built from.

`NulFree` and `TimeText` annotate text and time fields, `json_object` validates `metadata` and
`evidence`; each refusal is a pydantic error whose context holds the `path` of the offending key
or value below the field, which `domain.contracts.describe_validation_error` appends to the field
name (`metadata.user: text must not contain U+0000`).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from pydantic import AfterValidator, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

NUL_REFUSED = "text must not contain U+0000"
SURROGATE_REFUSED = "text must not contain a lone surrogate (U+D800 to U+DFFF)"
NON_FINITE_REFUSED = "NaN and Infinity are not JSON numbers"
TIME_TEXT_REFUSED = "must be an RFC 3339 date-time string with an offset, e.g. 2026-01-01T00:00:00Z"


def refusal(message: str, *path: str | int) -> PydanticCustomError:
    """A validation error whose detail names `path` below the field that raised it."""
    return PydanticCustomError("unstorable_value", message, {"path": path})


def text_problem(text: str) -> str | None:
    """Why PostgreSQL cannot store `text` (U+0000, or a lone surrogate), or None."""
    if "\x00" in text:
        return NUL_REFUSED
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return SURROGATE_REFUSED
    return None


def first_unstorable(value: object) -> PydanticCustomError | None:
    """The first key or value of a JSON-like value that PostgreSQL's jsonb cannot hold."""
    stack: list[tuple[tuple[str | int, ...], object]] = [((), value)]
    seen: set[int] = set()
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                return refusal(problem, *path)
        elif isinstance(item, float) and not math.isfinite(item):
            return refusal(NON_FINITE_REFUSED, *path)
        elif isinstance(item, dict | list | tuple) and id(item) not in seen:
            seen.add(id(item))
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            children = []
            for key, child in pairs:
                if isinstance(key, str) and (problem := text_problem(key)) is not None:
                    return refusal(problem, *path, key)
                children.append(((*path, key), child))
            stack.extend(reversed(children))
    return None


def json_object(limit: int, name: str) -> AfterValidator:
    """An object that jsonb stores: JSON data only, no U+0000, at most `limit` bytes as JSON.

    The size is measured on compact JSON with non-ASCII escaped, the same serialisation that
    shows a NUL (`\\u0000`) or a lone surrogate (`\\udXXX`): the walk runs only then.
    """

    def check(value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            text = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (ValueError, TypeError, RecursionError) as error:
            raise first_unstorable(value) or refusal(f"not JSON data: {error}") from None
        if len(text) > limit:
            raise ValueError(f"{name} is larger than {limit} bytes as JSON")
        if "\\u0000" in text or "\\ud" in text:
            problem = first_unstorable(value)
            if problem is not None:
                raise problem
        return value

    return AfterValidator(check)


def _nul_free(value: str) -> str:
    if "\x00" in value:
        raise refusal(NUL_REFUSED)
    return value


class NulFree:
    """Refuses U+0000 in a string validated from Python objects.

    From JSON, `domain.contracts.parse_message` checks the raw bytes once instead: a Python
    validator on each text field would add a tenth to the validation of a typical event.
    """

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=schema,
            python_schema=core_schema.no_info_after_validator_function(_nul_free, schema),
        )


def _time_text(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and value[4:5] == "-"):
        return value
    raise refusal(TIME_TEXT_REFUSED)


class TimeText:
    """A time is RFC 3339 text (or, from Python, a `datetime`), never what pydantic would read as
    a Unix time: a number, or a string of digits. From JSON the check runs in pydantic-core."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        text = core_schema.custom_error_schema(
            core_schema.str_schema(pattern=r"^\d{4}-"),
            custom_error_type="time_text",
            custom_error_message=TIME_TEXT_REFUSED,
        )
        return core_schema.json_or_python_schema(
            json_schema=core_schema.chain_schema([text, schema]),
            python_schema=core_schema.no_info_before_validator_function(_time_text, schema),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        text = handler(schema)
        text.pop("pattern", None)  # implied by the format
        return {**text, "format": "date-time"}
