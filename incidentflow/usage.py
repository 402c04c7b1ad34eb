"""What every subcommand shares: the user's-mistake exception, required settings, argument
types, and the library logs our tools replace with their own lines."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable


class UsageError(Exception):
    """A mistake of the user's (missing setting, file, bad value): exit status 2."""


def require(value: str | None, name: str) -> str:
    """`value`, the setting `name`; a UsageError saying it is not set if it is empty."""
    if not value:
        raise UsageError(f"{name} is not set")
    return value


def positive(kind: type[float] | type[int]) -> Callable[[str], float | int]:
    """An argparse type: the text read as `kind`, refused unless above zero."""

    def parse(text: str) -> float | int:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def quiet_kafka_logs() -> None:
    """Our tools report Kafka failures themselves, one line per attempt: aiokafka's own records
    (rebalance chatter, and hundreds of connection errors a second while the broker is away)
    are not for operators."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
