"""What every response body shares: money as a decimal string, `as_of`, documented examples.

Money is a decimal string (`"12.50000000"`), times are ISO 8601 with offset, durations are whole
milliseconds, percentages are numbers rounded half up. Every body carries `as_of`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field

Money = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$", examples=["12.34000000"])]
AsOfTime = Annotated[
    datetime,
    Field(description="Event time up to which the tables are complete; windows end here."),
]
GeneratedAt = Annotated[datetime, Field(description="Equals as_of.")]

EXAMPLE_ID = "0b5c2f8e-8d8a-5b6e-9a53-7c1f1f4f8a10"
EXAMPLE_AS_OF = "2024-05-01T10:05:00Z"


def examples(example: dict[str, Any]) -> ConfigDict:
    """A model config that documents `example` as the body's example in the OpenAPI schema."""
    return ConfigDict(json_schema_extra={"examples": [example]})
