"""What a failed database or broker call means, and how long the worker rides it out.

`is_data_error` tells a refusal caused by the data of a batch (it fails again whatever we do, so
the message responsible must be found and dead-lettered) from everything else (a lost
connection, a restart, a serialization failure or deadlock, a missing table before a
migration): those are retried with backoff, never dead-lettered. `Outage` counts the attempts of
one dependency and gives up, with a clear message, once it has been unavailable for longer than
the configured outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiokafka.errors import KafkaError

T = TypeVar("T")

log = logging.getLogger("incidentflow.ingest")

DATA_SQLSTATE_CLASSES = ("22", "23", "54")
"""Data exception, integrity constraint violation, program limit exceeded (e.g. an index entry
too large): the batch's data, not the database's state, is at fault."""
RETRIED_SQLSTATES = ("23505",)
"""A unique violation means another worker applied the same rows first (a zombie owner during a
rebalance): reloading the partition makes them duplicates, so it is retried."""
CLIENT_DATA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    OverflowError,
    UnicodeError,
    TypeError,
)
"""Raised by the driver while encoding a value it cannot send (psycopg's own `DataError`
carries no SQLSTATE and is a ValueError subclass of neither: it is matched by name below)."""
BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error (SQLAlchemy wraps psycopg's in `.orig`), else None."""
    original = getattr(error, "orig", None) or error
    state = getattr(original, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_data_error(error: BaseException) -> bool:
    """True when the batch's data caused `error`: retrying the same batch fails the same way."""
    state = sqlstate(error)
    if state is not None:
        return state.startswith(DATA_SQLSTATE_CLASSES) and state not in RETRIED_SQLSTATES
    original = getattr(error, "orig", None) or error
    if type(original).__name__ == "DataError":  # psycopg refused a value before sending it
        return True
    return isinstance(original, CLIENT_DATA_ERRORS)


def describe(error: BaseException) -> str:
    """One line: the error's type and its first line (the database's own message)."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text[0] if text else ''}".rstrip(": ")


class WorkerStop(RuntimeError):
    """A condition under which a worker stops (exit status 1) instead of going on; its message
    is the one line an operator reads."""


class OutageExceeded(WorkerStop):
    """A dependency stayed unavailable for longer than the configured outage."""


class Outage:
    """The unavailability of one dependency ("PostgreSQL", "the broker"): attempts and backoff.

    `failed()` records one failed attempt, logs it, and returns how long to wait before the next;
    it raises `OutageExceeded` once the first failure of this outage lies more than `limit`
    seconds back. `recovered()` ends the outage (and logs how long it lasted).
    """

    def __init__(
        self,
        what: str,
        limit: float,
        clock: Callable[[], float],
        delays: Sequence[float] = BACKOFF_SECONDS,
    ) -> None:
        self.what = what
        self.limit = limit
        self._clock = clock
        self._delays = tuple(delays)
        self.attempts = 0
        self.since: float | None = None

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException, doing: str) -> float:
        now = self._clock()
        if self.since is None:
            self.since = now
        self.attempts += 1
        elapsed = now - self.since
        if elapsed > self.limit:
            raise OutageExceeded(
                f"{self.what} unavailable for {elapsed:.0f} s ({self.attempts} attempts, the "
                f"limit is {self.limit:.0f} s; last error while {doing}: {describe(error)})"
            )
        delay = self._delays[min(self.attempts, len(self._delays)) - 1]
        log.warning(
            "%s unavailable while %s (attempt %d, %.0f s of %.0f s): %s; retrying in %.1f s",
            self.what, doing, self.attempts, elapsed, self.limit, describe(error), delay,
        )  # fmt: skip
        return delay

    def recovered(self) -> None:
        if self.since is None:
            return
        log.warning(
            "%s available again after %.1f s and %d failed attempts",
            self.what, self._clock() - self.since, self.attempts,
        )  # fmt: skip
        self.since = None
        self.attempts = 0


async def keep_trying(
    operation: Callable[[], Awaitable[T]],
    outage: Outage,
    doing: str,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> T:
    """`await operation()` until it succeeds, retrying broker and network failures
    (`KafkaError`, `OSError`, `TimeoutError`) with backoff until `outage` is exceeded."""
    while True:
        try:
            result = await operation()
        except (KafkaError, OSError, TimeoutError) as error:
            await sleep(outage.failed(error, doing))
            continue
        outage.recovered()
        return result
